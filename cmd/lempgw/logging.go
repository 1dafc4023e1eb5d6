package main

import (
	"io"
	"log/slog"
	"os"
)

// newLogger is the process logger: log/slog to stderr, with log.level and
// log.format from cfg (validated by LoadConfig).
func newLogger(cfg Config) *slog.Logger { return newLoggerTo(os.Stderr, cfg) }

// newLoggerTo is newLogger writing to w.
func newLoggerTo(w io.Writer, cfg Config) *slog.Logger {
	var level slog.Level
	switch cfg.Log.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
