package publish

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
)

// serverLog routes the embedded nats-server's log lines to slog, each with
// component=nats-server: notices at info (at debug while the server starts,
// so its start-up banner stays out of the way), warnings at warn, errors and
// fatal errors at error, debug lines at debug. It implements
// server.Logger and is safe for concurrent use.
//
// The embedded server is mailpoller's own, so its lines hold no server-
// supplied secrets (with nkey auth no secret ever crosses the wire) and
// are logged as they are: scrubbing them would hide the store paths an
// operator needs when the disk fills.
type serverLog struct {
	log     *slog.Logger
	running atomic.Bool // start-up finished: notices go to info

	// onStorageError, if set, is called (from the logging goroutine, so
	// it must not block) with every line that says JetStream hit a write
	// error or is being disabled.
	onStorageError func(line string)
}

func (l *serverLog) Noticef(format string, v ...any) {
	level := slog.LevelInfo
	if !l.running.Load() {
		level = slog.LevelDebug
	}
	l.emit(level, format, v)
}

func (l *serverLog) Warnf(format string, v ...any)  { l.emit(slog.LevelWarn, format, v) }
func (l *serverLog) Errorf(format string, v ...any) { l.emit(slog.LevelError, format, v) }

// Fatalf logs at error and does not exit: an embedded server's fatal error
// is for Connect or the storage guard to handle, not a reason to end the
// process.
func (l *serverLog) Fatalf(format string, v ...any) { l.emit(slog.LevelError, format, v) }
func (l *serverLog) Debugf(format string, v ...any) { l.emit(slog.LevelDebug, format, v) }
func (l *serverLog) Tracef(format string, v ...any) {} // protocol traces: never

func (l *serverLog) emit(level slog.Level, format string, v []any) {
	line := fmt.Sprintf(format, v...)
	if level >= slog.LevelWarn && l.onStorageError != nil && storageFailure(line) {
		l.onStorageError(line)
	}
	l.log.Log(context.Background(), level, line, "component", "nats-server")
}

// storageFailure reports whether a nats-server log line says that
// JetStream's storage failed in a way that needs JetStream restarted. In a
// standalone server (the embedded one) a write error such as ENOSPC is
// sticky: the file store refuses every later write of that stream until it
// is reopened, and the server answers those publishes with nothing at all;
// nats-server offers no API that reports it (its health check skips
// single-replica streams), so the log line is the signal. Permission errors
// and out-of-space in a cluster disable JetStream outright. The phrases are
// nats-server v2.15's: "Critical write error" (file store, raft),
// "critical write error" (stream, consumer, meta group), "will be DISABLED"
// and "disabling JetStream".
func storageFailure(line string) bool {
	l := strings.ToLower(line)
	return strings.Contains(l, "critical write error") ||
		strings.Contains(l, "will be disabled") ||
		strings.Contains(l, "disabling jetstream")
}
