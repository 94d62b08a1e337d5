package raftstore

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// slogHCLog routes hashicorp/raft's hclog output to a *slog.Logger. Lines
// below its level (shared by every logger derived from it) are dropped.
type slogHCLog struct {
	logger  *slog.Logger
	name    string
	implied []any
	level   *atomic.Int32
}

var _ hclog.Logger = (*slogHCLog)(nil)

func newHCLog(logger *slog.Logger, level hclog.Level) *slogHCLog {
	l := &slogHCLog{logger: logger, name: "raft", level: new(atomic.Int32)}
	l.level.Store(int32(level))
	return l
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (l *slogHCLog) enabled(level hclog.Level) bool {
	return level != hclog.Off && level >= hclog.Level(l.level.Load())
}

func (l *slogHCLog) Log(level hclog.Level, msg string, args ...any) {
	if !l.enabled(level) {
		return
	}
	attrs := make([]any, 0, 2+len(l.implied)+len(args))
	attrs = append(attrs, "logger", l.name)
	attrs = append(attrs, l.implied...)
	attrs = append(attrs, args...)
	l.logger.Log(context.Background(), slogLevel(level), msg, attrs...)
}

func (l *slogHCLog) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *slogHCLog) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *slogHCLog) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *slogHCLog) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *slogHCLog) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *slogHCLog) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *slogHCLog) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *slogHCLog) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *slogHCLog) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *slogHCLog) IsError() bool { return l.enabled(hclog.Error) }

func (l *slogHCLog) ImpliedArgs() []any { return l.implied }

func (l *slogHCLog) With(args ...any) hclog.Logger {
	c := *l
	c.implied = append(append([]any(nil), l.implied...), args...)
	return &c
}

func (l *slogHCLog) Name() string { return l.name }

func (l *slogHCLog) Named(name string) hclog.Logger {
	c := *l
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (l *slogHCLog) ResetNamed(name string) hclog.Logger {
	c := *l
	c.name = name
	return &c
}

func (l *slogHCLog) SetLevel(level hclog.Level) { l.level.Store(int32(level)) }

func (l *slogHCLog) GetLevel() hclog.Level { return hclog.Level(l.level.Load()) }

func (l *slogHCLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

func (l *slogHCLog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	force := hclog.NoLevel
	if opts != nil {
		force = opts.ForceLevel
	}
	return &hclogWriter{l: l, force: force}
}

// hclogWriter logs each write of a standard logger as one line, at the
// level its "[WARN]"-style prefix names (Info without one).
type hclogWriter struct {
	l     *slogHCLog
	force hclog.Level
}

var levelPrefixes = []struct {
	prefix string
	level  hclog.Level
}{
	{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
	{"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error},
}

func (w *hclogWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := hclog.Info
	for _, lp := range levelPrefixes {
		if rest, ok := bytes.CutPrefix(line, []byte(lp.prefix)); ok {
			level, line = lp.level, bytes.TrimSpace(rest)
			break
		}
	}
	if w.force != hclog.NoLevel {
		level = w.force
	}
	w.l.Log(level, string(line))
	return len(p), nil
}
