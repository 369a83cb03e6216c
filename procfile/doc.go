// Package procfile turns a Procfile, .env files and a gsup TOML file into
// one validated Spec. It reads files and nothing else: no process is
// started and no socket is opened here.
//
// Every error names the file and line (and the key, for TOML) it comes
// from, in the form "gsup.toml:12: process.web.restart: ...".
package procfile
