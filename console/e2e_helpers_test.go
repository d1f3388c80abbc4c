package console_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/weirstream/weir/wasmhost/wasmtest"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// findChromium returns the browser for the end-to-end test. Without one
// the test fails, naming the package to install (.ci/run installs it), so
// that a CI machine without a browser cannot pass by skipping; a developer
// who has none sets WEIR_SKIP_BROWSER=1 to skip the test on purpose.
func findChromium(t *testing.T) string {
	t.Helper()
	if os.Getenv("WEIR_SKIP_BROWSER") == "1" {
		t.Skip("WEIR_SKIP_BROWSER=1: the console's browser test is skipped")
	}
	exe, err := locateChromium(chromiumPath, "chromium")
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// locateChromium finds the browser at path, else as name on PATH; the
// error says what to install.
func locateChromium(path, name string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("the console's end-to-end test needs headless Chromium: no %s and no %s on PATH. "+
		"Install Debian's chromium package (apt-get install chromium; .ci/run does), "+
		"or set WEIR_SKIP_BROWSER=1 to skip this test", path, name)
}

// Viewports at which every main page is checked and photographed: a
// laptop and a phone.
var e2eViewports = []struct{ w, h int64 }{{1280, 800}, {390, 844}}

// e2eStepTimeout bounds one step of the test (a navigation, a form, a wait).
const e2eStepTimeout = 30 * time.Second

// chrome is one headless Chromium tab on the console, failing the test
// with the step's name, the page's address and text when a step fails.
type chrome struct {
	t         *testing.T
	ctx       context.Context
	base      string // the console's address, "http://127.0.0.1:port"
	artifacts string // where screenshots go

	mu          sync.Mutex
	dialogs     []string      // messages of the dialogs accepted so far
	handlerDone chan struct{} // closed when the dialog handler returns
}

// startChrome starts Chromium with the flags the project runs it with and
// opens a tab. Every JavaScript dialog (the console's confirmations) is
// accepted and its message recorded, as a user clicking OK.
func startChrome(t *testing.T, exe, base string) *chrome {
	t.Helper()
	root, err := wasmtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	art := filepath.Join(root, "artifacts", "console")
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatalf("creating the screenshot folder: %v", err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(int(e2eViewports[0].w), int(e2eViewports[0].h)),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &chrome{t: t, ctx: ctx, base: base, artifacts: art, handlerDone: make(chan struct{})}
	started := false
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		// The dialog handler must not report after the test ended.
		if started {
			<-b.handlerDone
		}
	})
	// The first Do starts the browser; it must not run under a step's
	// deadline, which would end the browser with the step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	// Phones draw no scrollbar beside the page; hiding it here too keeps
	// the layout width the viewport's (390 px is 390 px of page) and
	// full-page screenshots from being cut short by a scrollbar's width.
	if _, err := chromedp.Call(ctx, emulation.SetScrollbarsHidden, emulation.SetScrollbarsHiddenParams{Hidden: true}); err != nil {
		t.Fatalf("hiding scrollbars: %v", err)
	}
	// Subscribe before any page can open a dialog; the handler runs on its
	// own goroutine because a dialog blocks the action that opened it.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	started = true
	go func() {
		defer close(b.handlerDone)
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil && ctx.Err() == nil {
				t.Errorf("accepting the dialog %q: %v", ev.Message, err)
			}
		}
	}()
	return b
}

// dialogCount is how many dialogs were accepted so far.
func (b *chrome) dialogCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.dialogs)
}

// lastDialog is the message of the last dialog accepted.
func (b *chrome) lastDialog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) == 0 {
		return ""
	}
	return b.dialogs[len(b.dialogs)-1]
}

// do runs actions as one step, failing the test with what the page showed.
func (b *chrome) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(step, err)
	}
}

// chromeRun runs one action returning a value as a step.
func chromeRun[T any](b *chrome, step string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(step, err)
	}
	return v
}

// e2eTry runs one action and returns its error instead of failing: for
// reads of a page that may be reloading itself.
func e2eTry[T any](b *chrome, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// fail ends the test at a step, saving a screenshot of the page and
// quoting its address and text, which usually say what went wrong.
func (b *chrome) fail(step string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if len(text) > 2000 {
		text = text[:2000] + "…"
	}
	shot := filepath.Join(b.artifacts, "failure.png")
	if png, serr := chromedp.Run(ctx, chromedp.CaptureScreenshot()); serr == nil {
		_ = os.WriteFile(shot, png, 0o644)
	}
	b.t.Fatalf("step %q: %v\npage %s (screenshot %s):\n%s", step, err, loc, shot, text)
}

// navigate opens a console path and waits for it to load.
func (b *chrome) navigate(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

// submit triggers a navigation (a click on a form's button, or a key) and
// waits for the new page to load.
func (b *chrome) submit(step string, trigger chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	chromeRun(b, step, chromedp.WaitEvent(page.LoadEventFired, nil, trigger))
}

// path is the current page's path and query.
func (b *chrome) path() string {
	b.t.Helper()
	return chromeRun(b, "read the address", chromedp.Evaluate[string](`location.pathname + location.search`))
}

// text is the page's visible text.
func (b *chrome) text() string {
	b.t.Helper()
	return chromeRun(b, "read the page", chromedp.Evaluate[string](`document.body.innerText`))
}

// errE2ETimeout marks a condition that did not come true in time.
var errE2ETimeout = errors.New("timed out")

// waitFor polls cond (which may reload or read the page) every interval
// until it holds or d has passed, then fails the step with the last
// reason cond gave.
func (b *chrome) waitFor(step string, d, interval time.Duration, cond func() (bool, string)) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.fail(step, fmt.Errorf("%w after %v: %s", errE2ETimeout, d, why))
		}
		select {
		case <-b.ctx.Done():
			b.fail(step, b.ctx.Err())
		case <-tick.C:
		}
	}
}

// waitJS waits until the JavaScript expression js is true on the page,
// which may update or reload itself meanwhile (a read during a reload is
// just another try).
func (b *chrome) waitJS(step, js string, d time.Duration) {
	b.t.Helper()
	b.waitFor(step, d, 100*time.Millisecond, func() (bool, string) {
		ok, err := e2eTry(b, chromedp.Evaluate[bool](js))
		if err != nil {
			return false, fmt.Sprintf("%s: %v", js, err)
		}
		return ok, js + " is false"
	})
}

// e2eLayoutJS finds, with the page's own layout, what the console
// promises at every width: nothing wider than the viewport and a label
// for every form control. It returns descriptions of the offenders; for an
// overflow, the elements that stick out past the viewport without a
// scrolling box to hold them (an absolutely positioned element is held
// only by a box at or above its containing block).
const e2eLayoutJS = `(() => {
  const out = [];
  // The viewport's width without a scrollbar, should one be drawn.
  const vw = Math.min(window.innerWidth, document.documentElement.clientWidth);
  const sw = document.documentElement.scrollWidth;
  const held = (el) => {
    const pos = getComputedStyle(el).position;
    if (pos === "fixed") return false;
    const cb = pos === "absolute" ? el.offsetParent : null;
    for (let a = el.parentElement; a && a !== document.body && a !== document.documentElement; a = a.parentElement) {
      if (cb && a !== cb && cb.contains(a)) continue;
      if (getComputedStyle(a).overflowX !== "visible") return true;
    }
    return false;
  };
  const describe = (el) => {
    const cls = typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\s+/).join(".") : "";
    return "<" + el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + cls + "> right=" + Math.round(el.getBoundingClientRect().right) +
      " position=" + getComputedStyle(el).position + " text=" + JSON.stringify((el.textContent || "").trim().slice(0, 40));
  };
  if (sw > vw + 1) {
    out.push("horizontal overflow: scrollWidth " + sw + " > viewport width " + vw);
    for (const el of document.body.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > vw + 1 && !held(el)) {
        out.push("  sticks out: " + describe(el));
        if (out.length > 8) break;
      }
    }
  }
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || ["submit", "button", "reset", "image"].includes(el.type)) continue;
    const labelled = (el.labels && el.labels.length > 0) || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!labelled) out.push("no label: " + el.outerHTML.slice(0, 160));
  }
  return out;
})()`

// checkPage checks the current page at every viewport and photographs
// it: artifacts/console/<name>-<width>.png is what the window shows
// (width×height), <name>-<width>-full.png the whole page at that width.
// The page is left at the first viewport.
func (b *chrome) checkPage(name string) {
	b.t.Helper()
	for _, vp := range e2eViewports {
		step := fmt.Sprintf("page %s at %dx%d", name, vp.w, vp.h)
		b.do(step, chromedp.EmulateViewport(vp.w, vp.h))
		if probs := chromeRun(b, step, chromedp.Evaluate[[]string](e2eLayoutJS)); len(probs) > 0 {
			b.t.Errorf("%s (%s): %s", step, b.path(), strings.Join(probs, "\n"))
		}
		for suffix, shot := range map[string]chromedp.Action[[]byte]{"": chromedp.CaptureScreenshot(), "-full": chromedp.FullScreenshot(100)} {
			png := chromeRun(b, step+": screenshot", shot)
			file := filepath.Join(b.artifacts, fmt.Sprintf("%s-%d%s.png", name, vp.w, suffix))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				b.t.Fatalf("writing %s: %v", file, err)
			}
		}
	}
	b.do("back to the first viewport", chromedp.EmulateViewport(e2eViewports[0].w, e2eViewports[0].h))
}

// e2eJobPath matches a job page's path.
var e2eJobPath = regexp.MustCompile(`^/jobs/([^/?#]+)$`)
