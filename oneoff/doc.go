// Package oneoff runs a one-off command with an app's environment (`gsup
// run`, foreman's run), needing no running instance.
//
// gsup becomes the command: New builds the environment (procfile.RunEnv)
// and the argv, and Exec replaces the calling process with the program
// (execve), as a shell's exec does. So the command keeps gsup's pid,
// standard streams, terminal and process group: every signal sent to
// gsup run is the command's (INT, TERM, HUP, QUIT, USR1, USR2, WINCH and
// any other, Ctrl-C from the terminal once, not twice), its exit status
// (or the signal that killed it, 128+N in a shell) is what gsup's parent
// sees, and no process of gsup's is left to forward signals or outlive it.
// Signals ignored by whoever started gsup stay ignored, as through a
// shell.
package oneoff
