package arbiter

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"gsup/procfile"
	"gsup/supervisor"
)

// NewLogger makes gsup's own logger as spec asks: level, format, and
// --error-logfile (file is nil when the log goes to stderr; the caller
// closes it).
func NewLogger(spec *procfile.Spec, stderr io.Writer) (*logrus.Logger, *supervisor.LogFile, error) {
	log := logrus.New()
	log.SetOutput(stderr)
	var file *supervisor.LogFile
	if spec.ErrorLogfile != "" && spec.ErrorLogfile != "-" {
		f, err := supervisor.OpenLogFile(spec.ErrorLogfile)
		if err != nil {
			return nil, nil, fmt.Errorf("error log: %w", err)
		}
		file = f
		log.SetOutput(f)
	}
	switch spec.LogLevel {
	case "debug":
		log.SetLevel(logrus.DebugLevel)
	case "warning":
		log.SetLevel(logrus.WarnLevel)
	case "error":
		log.SetLevel(logrus.ErrorLevel)
	case "critical":
		log.SetLevel(logrus.FatalLevel)
	default:
		log.SetLevel(logrus.InfoLevel)
	}
	if spec.LogFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	} else {
		log.SetFormatter(&textFormatter{pid: os.Getpid()})
	}
	return log, file, nil
}

// levelNames are Gunicorn's names of the log levels.
var levelNames = map[logrus.Level]string{logrus.DebugLevel: "DEBUG", logrus.InfoLevel: "INFO", logrus.WarnLevel: "WARNING",
	logrus.ErrorLevel: "ERROR", logrus.FatalLevel: "CRITICAL", logrus.PanicLevel: "CRITICAL", logrus.TraceLevel: "DEBUG"}

// textFormatter writes Gunicorn's error-log layout:
// "[2006-01-02 15:04:05 -0700] [PID] [LEVEL] message key=value".
type textFormatter struct{ pid int }

func (f *textFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b := e.Buffer
	if b == nil {
		b = new(bytes.Buffer)
	}
	// A message of several lines (a config with several errors) is
	// written one line a problem, each in the log's layout, so that
	// nothing breaks a reader that takes a line for an entry.
	prefix := fmt.Sprintf("[%s] [%d] [%s] ", e.Time.Format("2006-01-02 15:04:05 -0700"), f.pid, levelNames[e.Level])
	lines := strings.Split(strings.TrimRight(e.Message, "\n"), "\n")
	for i, line := range lines {
		b.WriteString(prefix)
		b.WriteString(line)
		if i == len(lines)-1 {
			for _, k := range slices.Sorted(maps.Keys(e.Data)) {
				fmt.Fprintf(b, " %s=%v", k, e.Data[k])
			}
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}
