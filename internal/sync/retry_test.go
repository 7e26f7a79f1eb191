package sync

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
)

var errBlip = errors.New("blip")

func retryEngine(t *testing.T, transient func(error) bool) *Engine {
	t.Helper()
	opts, err := Options{Transient: transient, DBRetryBase: time.Millisecond, DBRetryMax: 5 * time.Millisecond,
		DBCallTimeout: 50 * time.Millisecond}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return &Engine{opts: opts, log: zap.NewNop()}
}

// retryDB tries a step again on a transient error or a try that got no
// answer in time, never on another error, and gives up when ctx ends.
func TestRetryDB(t *testing.T) {
	isBlip := func(err error) bool { return errors.Is(err, errBlip) }
	ctx := context.Background()
	e := retryEngine(t, isBlip)

	tries := 0
	err := e.retryDB(ctx, e.log, "step", func(context.Context) error {
		if tries++; tries < 4 {
			return errBlip
		}
		return nil
	})
	if err != nil || tries != 4 {
		t.Fatalf("transient: err %v after %d tries, want success at the 4th", err, tries)
	}

	tries = 0
	schema := errors.New("column does not exist")
	if err := e.retryDB(ctx, e.log, "step", func(context.Context) error { tries++; return schema }); err != schema || tries != 1 {
		t.Fatalf("not transient: err %v after %d tries, want it at once", err, tries)
	}

	// A try that hangs (a connection gone silent) is given up after
	// DBCallTimeout and made again.
	tries = 0
	err = e.retryDB(ctx, e.log, "step", func(ctx context.Context) error {
		if tries++; tries == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	if err != nil || tries != 2 {
		t.Fatalf("silent: err %v after %d tries, want success at the 2nd", err, tries)
	}

	// The window ends: the last error, no more tries.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	tries = 0
	if err := e.retryDB(wctx, e.log, "step", func(context.Context) error { tries++; return errBlip }); err != errBlip || wctx.Err() == nil {
		t.Fatalf("window end: err %v, want the last error once the window ended", err)
	}

	// No classifier: nothing is transient.
	e = retryEngine(t, nil)
	tries = 0
	if err := e.retryDB(ctx, e.log, "step", func(context.Context) error { tries++; return errBlip }); err != errBlip || tries != 1 {
		t.Fatalf("no classifier: err %v after %d tries, want it at once", err, tries)
	}
}
