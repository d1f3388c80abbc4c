package console_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/platform/client/clienttest"
	"github.com/weirstream/weir/tenants"
)

func TestJobShot(t *testing.T) {
	dir := os.Getenv("SHOT")
	if dir == "" {
		t.Skip()
	}
	wasm := wordcountWasm(t)
	srv := clienttest.Start(t, platform.Options{})
	ctx := context.Background()
	admin := client.New(srv.URL, srv.AdminToken, nil)
	admin.CreateTenant(ctx, "acme", nil)
	k, _ := admin.CreateKey(ctx, "acme", "d", tenants.RoleDeveloper, nil)
	dev := client.New(srv.URL, k.Token, nil)
	dev.UploadModule(ctx, "wordcount", wasm)
	j, err := dev.Deploy(ctx, []byte(jobWordsSpec), "", false)
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, chromedp.ExecPath("/usr/bin/chromium"), chromedp.Flag("headless", "new"), chromedp.NoSandbox, chromedp.WindowSize(1280, 1800))
	defer cancel()
	bctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	tctx, cancel3 := context.WithTimeout(bctx, 60*time.Second)
	defer cancel3()
	if err := chromedp.Do(tctx); err != nil {
		t.Fatal(err)
	}
	chromedp.Listen(tctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			t.Errorf("JS exception: %+v", e.ExceptionDetails)
		case *runtime.EventConsoleAPICalled:
			t.Logf("console.%s: %+v", e.Type, e.Args)
		case *page.EventJavascriptDialogOpening:
			go chromedp.Call(tctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	run := func(a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if _, err := chromedp.Run(tctx, a); err != nil {
			t.Fatal(err)
		}
	}
	str := func(a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(tctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	run(chromedp.Navigate(srv.URL + "/signin"))
	run(chromedp.SendKeys("#token", k.Token))
	run(chromedp.Submit("#token"))
	run(chromedp.WaitVisible("nav"))
	run(chromedp.Navigate(srv.URL + "/jobs/" + j.ID))
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.querySelector("#job-chart polyline").getAttribute("points").split(" ").length >= 3`)); err != nil {
		t.Fatal(err)
	}
	points := str(chromedp.Evaluate[string](`document.querySelector("#job-chart polyline").getAttribute("points")`))
	rates := str(chromedp.Text("#job-rates"))
	confirm := str(chromedp.Value(`form[action$="/cancel"] input[name=confirm]`))
	logs := str(chromedp.Text("#job-logs"))
	cp := str(chromedp.Text("#cp-latest"))
	edge := str(chromedp.TextContent(`#job-graph text.edge-rate[data-producer="gen"]`))
	table := str(chromedp.Text(`#job-vertices`))
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dir+"/live.png", shot, 0o644)
	t.Logf("points=%s\nrates=%s\nconfirm=%s\ncp=%s\nedge=%s\ntable=%s\nlogs=%s", points, rates, confirm, cp, edge, table, logs)
	waitJS := func(expr string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
				return
			}
			time.Sleep(100 * time.Millisecond) // throwaway check, not committed
		}
		t.Fatalf("never: %s", expr)
	}
	run(chromedp.Click(`form[action$="/savepoint"] button`))
	waitJS(`location.pathname.startsWith("/operations/") && !!document.querySelector("#operation-done") && document.querySelector("#operation-done").textContent === "yes"`)
	t.Logf("op page: %s", str(chromedp.Text("#operation")))
	shot, _ = chromedp.Run(tctx, chromedp.FullScreenshot(100))
	os.WriteFile(dir+"/op.png", shot, 0o644)
	run(chromedp.Navigate(srv.URL + "/jobs/" + j.ID))
	run(chromedp.Click(`form[action$="/cancel"] button`))
	waitJS(`!!document.querySelector("#job-state") && document.querySelector("#job-state").textContent === "canceled"`)
	t.Logf("after cancel: %s", str(chromedp.Evaluate[string](`location.href + " " + document.querySelector(".flash").textContent`)))
}
