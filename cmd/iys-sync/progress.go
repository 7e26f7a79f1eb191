package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progressBar draws one line on a terminal, at most ten times a second, and
// nothing at all when the output is piped or redirected.
type progressBar struct {
	w     io.Writer
	on    bool
	last  time.Time
	shown bool
}

func newProgressBar(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	return &progressBar{w: w, on: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progressBar) update(path string, read, size int64) {
	if !p.on || size <= 0 || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	done := int(read * width / size)
	if done > width {
		done = width
	}
	fmt.Fprintf(p.w, "\r[%s%s] %3d%% %s", strings.Repeat("#", done), strings.Repeat(".", width-done), read*100/size, path)
	p.shown = true
}

// clear removes the bar before other output, so that lines never interleave.
func (p *progressBar) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
