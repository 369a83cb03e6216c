// Package corpus reads Gunicorn's HTTP request corpus
// (shared/corpus/gunicorn-requests: tests/requests/valid and invalid of
// Gunicorn 26.1, see its README) and holds what the tests that run it
// through gsup's front share: where the corpus is, how its files decode,
// the manifest, the per-case limits Gunicorn's own tests set, the cases
// that are not scored, the valid cases an RFC makes a front refuse (with
// the section and why), the peers' figures, and how a connection's answer
// is classified (refused or forwarded) and counted. Only tests use it.
//
// Wiring, in a test:
//
//	cases := corpus.Load(t)            // skips without the corpus; fails under CI=true
//	res, err := corpus.Send(addr, c.Raw, 10*time.Second) // or SendThen, to half-close later
//	// the app behind the front sets corpus.ForwardedHeader on its answers
//	s := corpus.Tally(cases, func(c corpus.Case) corpus.Verdict { ... })
//
// A case is refused when the front answered 4xx or 5xx to any request of
// the connection, or closed it without answering; it is forwarded when at
// least one answer came from the app and nothing was refused. A case can
// be neither: the front answered it itself without an error status.
package corpus
