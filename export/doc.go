// Package export writes the files that run an app's gsup under a process
// monitor — systemd, runit, supervisord, upstart — as `gsup export FORMAT
// DIR` does (foreman's and honcho's verb). The files are those of
// examples/deploy/, filled in from a loaded procfile.Spec: gsup's own
// executable, the app's folder and files, the user, the folders of the pid
// file, control socket and logs, and the timeouts each monitor needs
// computed from the config (a stop takes at most graceful_timeout + the
// largest stop_timeout). The templates are embedded text/template files,
// one a file written.
package export
