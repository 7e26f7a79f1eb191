package source

import (
	"context"
	"errors"
	"testing"

	"github.com/iys-sync/iys-sync/internal/consent"
)

type pullerFunc func() error

func (f pullerFunc) Pull(context.Context, consent.ConnectorRef, int64) error { return f() }

// Chain runs every Puller in order, even after a failure, and joins the errors.
func TestChain(t *testing.T) {
	t.Parallel()
	var order []int
	e1, e3 := errors.New("one"), errors.New("three")
	ch := Chain{
		pullerFunc(func() error { order = append(order, 1); return e1 }),
		nil,
		pullerFunc(func() error { order = append(order, 2); return nil }),
		pullerFunc(func() error { order = append(order, 3); return e3 }),
	}
	err := ch.Pull(context.Background(), consent.ConnectorRef{}, 1)
	if !errors.Is(err, e1) || !errors.Is(err, e3) {
		t.Errorf("err = %v, want both failures", err)
	}
	if len(order) != 3 || order[0] != 1 || order[1] != 2 || order[2] != 3 {
		t.Errorf("order = %v, want [1 2 3]", order)
	}
	if err := (Chain{pullerFunc(func() error { return nil })}).Pull(context.Background(), consent.ConnectorRef{}, 1); err != nil {
		t.Errorf("no failure: %v", err)
	}
}
