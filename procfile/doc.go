// Package procfile turns a Procfile, .env files and a gsup TOML file into
// one validated Spec. It reads files and nothing else: no process is
// started and no socket is opened here.
//
// Every error names the file and line (and the key, for TOML) it comes
// from, in the form "gsup.toml:12: process.web.restart: ...".
//
// Load puts the sources together. Settings: defaults < TOML file <
// environment < command line (the last two arrive merged in
// Options.Over). Children's environment: gsup's own < .env files (a later
// file wins) < TOML env < [process.NAME] env; Spec.Env holds the middle
// two, Process.Env the last; Environ puts them together for every process
// gsup starts (without the variables of gsup's own service manager), and
// RunEnv does so for a one-off command (`gsup run`). Process types: the
// Procfile's in file order, each completed by a [process.NAME] table of
// the same name, then the TOML file's own tables in file order; that order
// gives each type its block of PortsPerType ports. Load's doc comment gives the base port rule.
//
// Every setting is a row of one table (table.go): its TOML key, flag,
// GSUP_* variable, default and Spec field. Load applies the defaults, the
// TOML file and the flags through it; Flags gives the command line its
// flags, WritePlan its names.
//
// The TOML file is decoded by BurntSushi/toml into plain maps and checked
// key by key against the table (a key without a row is unknown), so that
// unknown keys, wrong types and bad values all come out with their line
// (found by keyLines, as the decoder does not expose key positions).
package procfile
