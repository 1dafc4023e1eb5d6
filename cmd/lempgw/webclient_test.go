package main

// Issue 7: the lemp.web_client key and its serve wiring.

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestWebClientKey(t *testing.T) {
	def, err := LoadConfig("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !def.LEMP.WebClient {
		t.Error("lemp.web_client is off by default, want on")
	}
	off, err := LoadConfig(writeFile(t, "[lemp]\nweb_client = false\n"), nil, nil)
	if err != nil || off.LEMP.WebClient {
		t.Errorf("web_client = false in the file: %v, %v", off.LEMP.WebClient, err)
	}
	off, err = LoadConfig("", []string{"LEMPGW_LEMP__WEB_CLIENT=0"}, nil)
	if err != nil || off.LEMP.WebClient {
		t.Errorf("LEMPGW_LEMP__WEB_CLIENT=0: %v, %v", off.LEMP.WebClient, err)
	}
	_, err = LoadConfig("", []string{"LEMPGW_LEMP__WEB_CLIENT=maybe"}, nil)
	wantErr(t, err, "config: ", "lemp.web_client", `"maybe"`)
	// The page is at /, so the websocket must be elsewhere, unless the page is off.
	_, err = LoadConfig(writeFile(t, "[lemp]\npath = \"/\"\n"), nil, nil)
	wantErr(t, err, "config: ", "lemp.path", `"/"`, "lemp.web_client")
	if _, err := LoadConfig(writeFile(t, "[lemp]\npath = \"/\"\nweb_client = false\n"), nil, nil); err != nil {
		t.Errorf("path / without the web client: %v", err)
	}
}

// TestServeWebClient: serve answers GET / with the page by default, and
// with 404 after --lemp.web_client=false.
func TestServeWebClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		flags []string
		code  int
	}{
		{nil, http.StatusOK},
		{[]string{"--lemp.web_client=false"}, http.StatusNotFound},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		var out, errb syncBuffer
		done := make(chan int, 1)
		args := append([]string{"serve", "--lemp.listen", "127.0.0.1:0", "--http.listen", "127.0.0.1:0"}, tc.flags...)
		go func() { done <- runEnv(ctx, args, nil, &out, &errb) }()
		addr := ""
		started := regexp.MustCompile(`lemp=ws://([^/ ]+)/lemp`)
		for deadline := time.Now().Add(30 * time.Second); addr == ""; {
			if m := started.FindStringSubmatch(errb.String()); m != nil {
				addr = m[1]
				break
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("serve %v did not start: %s", tc.flags, errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || (tc.code == http.StatusOK && !strings.Contains(string(body), `<script src="app.js"`)) {
			t.Errorf("serve %v: GET / = %d, want %d\n%s", tc.flags, resp.StatusCode, tc.code, body)
		}
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exit %d; stderr %s", code, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop")
		}
	}
}
