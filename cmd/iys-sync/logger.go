package main

import (
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/iys-sync/iys-sync/internal/config"
	"github.com/iys-sync/iys-sync/internal/redact"
)

// newLogger builds the zap logger of the settings, writing to w (stderr), so
// that stdout stays free for a command's JSON. Every line is scrubbed of the
// process's secrets and of URL passwords on its way out, whatever field
// carries them.
func newLogger(cfg config.Config, w io.Writer) *zap.Logger {
	var level zapcore.Level
	_ = level.Set(cfg.LogLevel) // validated by config
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(redact.Writer(w))), level))
}
