package corpus

// Verdict is how a front treated one case.
type Verdict struct {
	Refused bool // see Result.Refused
	Passed  bool // see Result.Passed
}

// Score counts a front's verdicts over the corpus.
type Score struct {
	Refused, Invalid      int // invalid cases refused, of those scored
	Forwarded, Valid      int // valid cases forwarded, of those scored
	StrictRefused, Compat int // compat-only valid cases refused, of those
}

// Tally scores verdict over cases: the scored invalid cases refused, the
// scored valid cases forwarded, and the valid cases that need a Gunicorn
// compat switch refused (less those byte for byte a scored valid case,
// see SameBytes).
func Tally(cases []Case, verdict func(Case) Verdict) Score {
	var s Score
	for _, c := range cases {
		v := verdict(c)
		_, excluded := NotInScore[c.ID]
		switch {
		case c.Kind == "invalid" && !excluded:
			s.Invalid++
			if v.Refused {
				s.Refused++
			}
		case c.Kind == "valid" && !excluded:
			s.Valid++
			if v.Passed {
				s.Forwarded++
			}
		case c.Kind == "valid" && SameBytes(cases, c) != "":
		case c.Kind == "valid":
			s.Compat++
			if v.Refused {
				s.StrictRefused++
			}
		}
	}
	return s
}
