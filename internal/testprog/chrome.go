package testprog

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// chromeFlags are headless Chromium's flags for tests: nothing reaches
// the network but the page.
var chromeFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,800"}

// cmdChromeDOM opens URL in headless Chromium, waits until the
// JavaScript expression -wait is true in the page (its scripts ran),
// and writes the page's DOM to stdout. --dump-dom cannot do this: it
// dumps at the load event, before a script's first Server-Sent Event,
// and --virtual-time-budget never ends while an event stream is open.
// It speaks the DevTools protocol over --remote-debugging-pipe.
func cmdChromeDOM(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("chromedom", flag.ContinueOnError)
	wait := fs.String("wait", "true", "JavaScript `EXPR` to wait for")
	insecure := fs.Bool("insecure", false, "accept the server's certificate unchecked (a test CA's)")
	timeout, pos := cmdFlags(ts, fs, args, 1, 1, "[-t DUR] [-wait EXPR] [-insecure] URL")
	if neg {
		ts.Fatalf("chromedom: no ! form")
	}
	var extra []string
	if *insecure {
		extra = append(extra, "--ignore-certificate-errors")
	}
	dom, err := chromeDOM(ts.MkAbs("chromedom"), pos[0], *wait, timeout, extra...)
	ts.Check(err)
	fmt.Fprint(ts.Stdout(), dom)
}

func chromeDOM(profile, url, wait string, timeout time.Duration, extra ...string) (string, error) {
	toChrome, ours, err := os.Pipe()
	if err != nil {
		return "", err
	}
	fromChrome, theirs, err := os.Pipe()
	if err != nil {
		return "", err
	}
	args := append(append(slices.Clone(chromeFlags), extra...), "--remote-debugging-pipe", "--user-data-dir="+filepath.Clean(profile), url)
	cmd := exec.Command("chromium", args...)
	cmd.ExtraFiles = []*os.File{toChrome, theirs} // fds 3 and 4
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("chromium: %w", err)
	}
	toChrome.Close()
	theirs.Close()
	defer func() {
		ours.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		fromChrome.Close()
	}()
	timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()

	rd := bufio.NewReader(fromChrome)
	id := 0
	call := func(session, method string, params any) (json.RawMessage, error) {
		id++
		msg := map[string]any{"id": id, "method": method, "params": params}
		if session != "" {
			msg["sessionId"] = session
		}
		data, _ := json.Marshal(msg)
		if _, err := ours.Write(append(data, 0)); err != nil {
			return nil, fmt.Errorf("chromium %s: %w", method, err)
		}
		for {
			line, err := rd.ReadBytes(0)
			if err != nil {
				return nil, fmt.Errorf("chromium %s: %w", method, err)
			}
			var resp struct {
				ID     int             `json:"id"`
				Result json.RawMessage `json:"result"`
				Error  *struct{ Message string }
			}
			if json.Unmarshal(line[:len(line)-1], &resp) != nil || resp.ID != id {
				continue // an event
			}
			if resp.Error != nil {
				return nil, fmt.Errorf("chromium %s: %s", method, resp.Error.Message)
			}
			return resp.Result, nil
		}
	}
	var targets struct {
		TargetInfos []struct{ TargetID, Type, URL string }
	}
	var page string
	ok, last := Poll(timeout, func() (bool, string) {
		res, err := call("", "Target.getTargets", map[string]any{})
		if err != nil {
			return true, err.Error()
		}
		_ = json.Unmarshal(res, &targets)
		for _, t := range targets.TargetInfos {
			if t.Type == "page" {
				page = t.TargetID
				return true, ""
			}
		}
		return false, "no page yet"
	})
	if !ok || page == "" {
		return "", fmt.Errorf("chromium: %s", last)
	}
	res, err := call("", "Target.attachToTarget", map[string]any{"targetId": page, "flatten": true})
	if err != nil {
		return "", err
	}
	var att struct{ SessionID string }
	_ = json.Unmarshal(res, &att)
	eval := func(expr string) (string, error) {
		res, err := call(att.SessionID, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
		if err != nil {
			return "", err
		}
		var v struct{ Result struct{ Value any } }
		_ = json.Unmarshal(res, &v)
		switch x := v.Result.Value.(type) {
		case string:
			return x, nil
		case bool:
			return strconv.FormatBool(x), nil
		}
		return fmt.Sprint(v.Result.Value), nil
	}
	var evalErr error
	ok, last = Poll(timeout, func() (bool, string) {
		v, err := eval("Boolean(" + wait + ")")
		if err != nil {
			evalErr = err
			return true, err.Error()
		}
		return v == "true", wait + " is " + v
	})
	if evalErr != nil {
		return "", evalErr
	}
	if !ok {
		return "", errors.New("chromium: " + last)
	}
	dom, err := eval("document.documentElement.outerHTML")
	_, _ = call("", "Browser.close", map[string]any{})
	return dom, err
}
