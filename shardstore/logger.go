package shardstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleLogger routes Pebble's printf-style logging into slog.
//
// Pebble calls Fatalf when it cannot go on (a failed WAL write or fsync, a
// failed MANIFEST write, detected corruption) and expects it not to return:
// after a failed commit, DB.Apply returns nil once Fatalf returns, so a
// returning Fatalf would make an undurable write look durable. Fatalf here
// logs at Error and panics with a fatalError. Store methods recover that
// panic on their own goroutine and turn it into ErrFailed; on Pebble's
// background goroutines nothing recovers it and the process ends, as it would
// with Pebble's default logger (os.Exit).
type pebbleLogger struct {
	log *slog.Logger
}

var _ pebble.Logger = pebbleLogger{}

// fatalError is the panic value of pebbleLogger.Fatalf.
type fatalError struct {
	msg string
}

func (e fatalError) Error() string { return e.msg }

func (l pebbleLogger) Infof(format string, args ...interface{}) {
	l.logf(slog.LevelInfo, format, args)
}

func (l pebbleLogger) Errorf(format string, args ...interface{}) {
	l.logf(slog.LevelError, format, args)
}

func (l pebbleLogger) Fatalf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, slog.Bool("fatal", true))
	panic(fatalError{msg: msg})
}

func (l pebbleLogger) logf(level slog.Level, format string, args []interface{}) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, args...))
}
