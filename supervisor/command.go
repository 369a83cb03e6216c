package supervisor

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// ChildArg is the first argument that makes gsup run as the child helper
// (main dispatches it to ChildMain): it sets the umask and LISTEN_PID, then
// execs the command, so the command keeps the helper's pid.
const ChildArg = "__gsup_child"

// ShellArgv returns the argv that runs a Procfile command line:
// `/bin/sh -c "exec CMD"` for one simple command, so the app replaces the
// shell (Debian's dash would fork otherwise and the app would not be
// gsup's child), and `/bin/sh -c CMD` for anything compound.
func ShellArgv(command string) []string {
	return []string{"/bin/sh", "-c", execForm(command)}
}

// execForm puts exec in front of a single simple command. Leading
// variable assignments stay in front ("A=1 exec app" sets A for app).
func execForm(command string) string {
	c := strings.TrimSpace(command)
	if !isSimple(c) {
		return command
	}
	words := splitWords(c)
	if words == nil {
		return command
	}
	i := 0
	for i < len(words) && isAssignment(words[i].text) {
		i++
	}
	if i == len(words) {
		return command // only assignments
	}
	first := words[i].text
	if first == "exec" {
		return command
	}
	if shellKeywords[first] {
		return command
	}
	at := words[i].start
	return c[:at] + "exec " + c[at:]
}

var shellKeywords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "case": true, "esac": true,
	"for": true, "while": true, "until": true, "do": true, "done": true, "{": true, "}": true,
	"!": true, "function": true, "select": true, "[[": true, "time": true, "exit": true, "times": true,
	"command": true, "getopts": true, "hash": true, "jobs": true, "fg": true, "bg": true, "type": true, "local": true,
	// Special builtins: exec would try to run them as programs.
	".": true, ":": true, "break": true, "continue": true, "eval": true, "export": true,
	"readonly": true, "return": true, "set": true, "shift": true, "trap": true, "unset": true,
	"cd": true, "source": true, "alias": true, "wait": true, "read": true, "ulimit": true, "umask": true,
}

// isSimple reports a command without ; & | newline, redirection,
// subshell, command substitution or comment outside quotes.
func isSimple(c string) bool {
	var quote byte
	for i := 0; i < len(c); i++ {
		ch := c[i]
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			}
		case quote == '"':
			switch ch {
			case '\\':
				i++
			case '"':
				quote = 0
			case '`':
				return false
			case '$':
				if i+1 < len(c) && c[i+1] == '(' {
					return false
				}
			}
		default:
			switch ch {
			case '\\':
				i++
			case '\'', '"':
				quote = ch
			case ';', '&', '|', '\n', '<', '>', '(', ')', '`', '#':
				return false
			case '$':
				if i+1 < len(c) && c[i+1] == '(' {
					return false
				}
			}
		}
	}
	return quote == 0
}

type word struct {
	text  string // raw text, quotes kept
	start int
}

// splitWords splits at unquoted blanks; nil for an empty command.
func splitWords(c string) []word {
	var words []word
	var quote byte
	start := -1
	for i := 0; i <= len(c); i++ {
		if i == len(c) {
			if start >= 0 {
				words = append(words, word{c[start:], start})
			}
			break
		}
		ch := c[i]
		if quote == 0 && (ch == ' ' || ch == '\t') {
			if start >= 0 {
				words = append(words, word{c[start:i], start})
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
		switch {
		case quote == 0 && (ch == '\'' || ch == '"'):
			quote = ch
		case quote == ch:
			quote = 0
		case ch == '\\' && quote != '\'':
			i++
		}
	}
	return words
}

func isAssignment(w string) bool {
	eq := strings.IndexByte(w, '=')
	if eq <= 0 {
		return false
	}
	for i := 0; i < eq; i++ {
		ch := w[i]
		if ch != '_' && !(ch >= 'A' && ch <= 'Z') && !(ch >= 'a' && ch <= 'z') && !(i > 0 && ch >= '0' && ch <= '9') {
			return false
		}
	}
	return true
}

// credential resolves user and group names (or numeric ids) to a
// credential; nil when both are empty.
func credential(userName, groupName string) (*syscall.Credential, error) {
	if userName == "" && groupName == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			if _, nerr := strconv.Atoi(userName); nerr != nil {
				return nil, fmt.Errorf("user %q: %w", userName, err)
			}
			u, err = user.LookupId(userName)
			if err != nil {
				id, _ := strconv.Atoi(userName)
				u = &user.User{Uid: userName, Gid: strconv.Itoa(id)}
			}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
		if ids, err := u.GroupIds(); err == nil {
			for _, g := range ids {
				if n, err := strconv.Atoi(g); err == nil && n != gid {
					cred.Groups = append(cred.Groups, uint32(n))
				}
			}
		}
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if n, nerr := strconv.Atoi(groupName); nerr == nil {
				g = &user.Group{Gid: strconv.Itoa(n)}
			} else {
				return nil, fmt.Errorf("group %q: %w", groupName, err)
			}
		}
		gid, _ := strconv.Atoi(g.Gid)
		cred.Gid = uint32(gid)
	}
	return cred, nil
}

// ChildMain is the child helper: `gsup __gsup_child [-umask 022] -- ARGV...`.
// It sets the umask, sets LISTEN_PID to its own pid when LISTEN_FDS is set
// (os/exec cannot know a child's pid before it runs), then execs ARGV. It
// returns only on error, with the exit code to use (127, as a shell does).
func ChildMain(args []string) int {
	for len(args) > 0 && args[0] != "--" {
		switch args[0] {
		case "-umask":
			if len(args) < 2 {
				return childFail("-umask needs a value")
			}
			m, err := strconv.ParseUint(args[1], 8, 32)
			if err != nil {
				return childFail("bad umask " + args[1])
			}
			syscall.Umask(int(m))
			args = args[2:]
		default:
			return childFail("unknown option " + args[0])
		}
	}
	if len(args) < 2 {
		return childFail("no command")
	}
	argv := args[1:]
	if os.Getenv("LISTEN_FDS") != "" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	err := syscall.Exec(argv[0], argv, os.Environ())
	return childFail(fmt.Sprintf("exec %s: %v", argv[0], err))
}

func childFail(msg string) int {
	fmt.Fprintln(os.Stderr, "gsup child helper:", msg)
	return 127
}
