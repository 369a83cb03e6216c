// Package signals turns the signals gsup receives into supervisor actions
// (see the table in the README), and speaks to whatever runs gsup: the pid
// file here, readiness to systemd elsewhere in the package.
//
// signal.Notify is called only here. The channel is a parameter of Run,
// so tests can inject signals.
package signals
