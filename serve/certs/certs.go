// Package certs keeps the front's TLS certificates: read from PEM files,
// chosen by the name a client asks for (SNI: the exact name, then a
// wildcard, then the first certificate), read again on demand (HUP, USR1)
// and when their files change on disk. A file that cannot be read keeps
// the certificate in use. With [serve.acme], ACME (acme.go) serves its
// domains no file covers, obtaining and renewing their certificates with
// golang.org/x/crypto/acme/autocert. Config returns the TLS settings of
// the front: TLS 1.2 and 1.3 only, Mozilla's "intermediate" cipher
// suites, HTTP/2 and HTTP/1.1 by ALPN (and "acme-tls/1" with ACME).
package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/acme"

	"gsup/procfile"
)

// CipherSuites are Mozilla's "intermediate" TLS 1.2 suites that Go has
// (TLS 1.3's are not configurable, and all three are in it).
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ErrUnknownName is the handshake error for a name no certificate (and
// no allowed host) covers, when the front has a host allow-list.
var ErrUnknownName = errors.New("no certificate for this name")

// entry is one certificate and what it was read from.
type entry struct {
	pair  procfile.CertPair
	cert  *tls.Certificate
	names []string // lowercase DNS names of the leaf
	seen  [2]stamp // the files as last read (or tried)
}

// stamp identifies a version of a file.
type stamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

// Store holds the certificates. Safe for concurrent use.
type Store struct {
	log   *logrus.Logger
	mu    sync.RWMutex
	list  []*entry
	exact map[string]*entry
	wild  map[string]*entry // "example.com" for *.example.com
	// Strict refuses a handshake for a name that matches no certificate
	// (the front has a host allow-list); else the first certificate is
	// given.
	strict atomic.Bool
	// acme answers its domains that no certificate file covers, a
	// client with no name when there is no file, and TLS-ALPN-01
	// challenges; nil = no [serve.acme].
	acme *ACME
}

// New reads every pair (an unreadable one is an error); acme, if not
// nil, serves the names of [serve.acme].
func New(pairs []procfile.CertPair, acme *ACME, strict bool, log *logrus.Logger) (*Store, error) {
	s := &Store{log: log, acme: acme}
	s.strict.Store(strict)
	if err := s.Set(pairs); err != nil {
		return nil, err
	}
	return s, nil
}

// Set replaces the certificates with pairs (at a reload): all are read,
// or none is changed and the error says which is wrong.
func (s *Store) Set(pairs []procfile.CertPair) error {
	var list []*entry
	for _, p := range pairs {
		e := &entry{pair: p}
		if err := e.load(); err != nil {
			return err
		}
		list = append(list, e)
	}
	s.mu.Lock()
	s.list = list
	s.index()
	s.mu.Unlock()
	return nil
}

// SetStrict says whether a handshake for a name no certificate covers is
// refused (the front's host allow-list changed at a reload).
func (s *Store) SetStrict(strict bool) { s.strict.Store(strict) }

// index rebuilds the name maps; the first certificate naming a name wins.
func (s *Store) index() {
	s.exact, s.wild = map[string]*entry{}, map[string]*entry{}
	for _, e := range s.list {
		for _, n := range e.names {
			m := s.exact
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				m, n = s.wild, rest
			}
			if _, ok := m[n]; !ok {
				m[n] = e
			}
		}
	}
}

func (e *entry) load() error {
	e.seen = [2]stamp{stampOf(e.pair.CertFile), stampOf(e.pair.KeyFile)}
	if err := procfile.CheckCertPair(e.pair); err != nil {
		return err
	}
	c, err := tls.LoadX509KeyPair(e.pair.CertFile, e.pair.KeyFile)
	if err != nil {
		return fmt.Errorf("certificate %s with key %s: %w", e.pair.CertFile, e.pair.KeyFile, err)
	}
	e.cert = &c
	e.names = nil
	for _, n := range c.Leaf.DNSNames {
		e.names = append(e.names, strings.ToLower(n))
	}
	if len(e.names) == 0 && c.Leaf.Subject.CommonName != "" {
		e.names = []string{strings.ToLower(c.Leaf.Subject.CommonName)}
	}
	return nil
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return statIno(fi, stamp{mod: fi.ModTime(), size: fi.Size()})
}

// Reload reads again the certificates whose files changed since they
// were last read (all of them when force): each that fails is reported
// and keeps the one in use. It returns the errors joined.
func (s *Store) Reload(force bool) error {
	s.mu.RLock()
	list := append([]*entry(nil), s.list...)
	s.mu.RUnlock()
	var errs []error
	changed := false
	for _, old := range list {
		now := [2]stamp{stampOf(old.pair.CertFile), stampOf(old.pair.KeyFile)}
		if !force && now == old.seen {
			continue
		}
		e := &entry{pair: old.pair}
		if err := e.load(); err != nil {
			old.seen = now // reported once a change
			err = fmt.Errorf("reading the certificate again, the one in use is kept: %w", err)
			s.log.WithField("certfile", old.pair.CertFile).Error(err)
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		for i, x := range s.list {
			if x == old {
				s.list[i] = e
			}
		}
		s.mu.Unlock()
		changed = true
		s.log.WithField("certfile", e.pair.CertFile).Infof("certificate %s read (%s; expires %s)",
			e.pair.CertFile, strings.Join(e.names, ","), e.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if changed {
		s.mu.Lock()
		s.index()
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Watch calls Reload(false) every interval until stop is closed.
func (s *Store) Watch(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = s.Reload(false)
		case <-stop:
			return
		}
	}
}

// Covers reports whether a certificate (or ACME) is for host.
func (s *Store) Covers(host string) bool {
	host = strings.ToLower(host)
	if s.acme != nil && s.acme.Covers(host) {
		return true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lookup(host) != nil
}

func (s *Store) lookup(name string) *entry {
	if e := s.exact[name]; e != nil {
		return e
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		return s.wild[parent]
	}
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if s.acme != nil && isChallengeHello(hello) {
		return s.acme.GetCertificate(hello)
	}
	s.mu.RLock()
	e := s.lookup(name)
	var first *entry
	if len(s.list) > 0 {
		first = s.list[0]
	}
	s.mu.RUnlock()
	switch {
	case e != nil:
		return e.cert, nil
	case s.acme != nil && s.acme.Covers(name):
		return s.acme.GetCertificate(hello)
	case s.strict.Load() && name != "":
		return nil, ErrUnknownName
	case first != nil:
		return first.cert, nil
	case s.acme != nil && name == "":
		return s.acme.GetCertificate(hello)
	}
	return nil, ErrUnknownName
}

// Config returns the front's TLS settings, certificates from s; with
// ACME, "acme-tls/1" is offered last, chosen only by ACME servers
// validating TLS-ALPN-01.
func (s *Store) Config() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if s.acme != nil {
		protos = append(protos, acme.ALPNProto)
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   CipherSuites,
		NextProtos:     protos,
		GetCertificate: s.GetCertificate,
		// Session ticket keys: crypto/tls makes them at random and
		// rotates them every day (a key lives 7 days); none is shared
		// with another process.
	}
}
