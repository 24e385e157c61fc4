// Command gotemplate-oracle renders templates with Go's text/template, for Stoker's
// differential test (stoker-core/tests/template_go.rs). Test infrastructure only: it is never
// shipped. Standard library only.
//
// Input (stdin): one JSON object per line, {"t": "<template>", "d": {<data>}}, where the data
// holds the variables that are set: "GatewayName", "PodName", "CRName", "Namespace", "Ref",
// "Commit" (strings), "PodOrdinal" (a string; an integer when it parses as one, as Stoker
// presents it), "Labels" and "Vars" (objects of strings).
//
// Output (stdout): one JSON object per input line, {"ok": true, "out": "<output>"} or
// {"ok": false, "err": "<message>"}. Output that is not valid UTF-8 counts as an error, as in
// Stoker (its renders are Rust strings).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/template"
	"time"
	"unicode/utf8"
)

type request struct {
	T string                     `json:"t"`
	D map[string]json.RawMessage `json:"d"`
}

type response struct {
	OK  bool   `json:"ok"`
	Out string `json:"out,omitempty"`
	Err string `json:"err,omitempty"`
}

// data builds what Stoker's renderer sees: a map[string]interface{} of the set variables.
func data(raw map[string]json.RawMessage) (map[string]interface{}, error) {
	out := make(map[string]interface{}, len(raw))
	for key, value := range raw {
		switch key {
		case "Labels", "Vars":
			m := map[string]string{}
			if err := json.Unmarshal(value, &m); err != nil {
				return nil, err
			}
			out[key] = m
		default:
			var s string
			if err := json.Unmarshal(value, &s); err != nil {
				return nil, err
			}
			if key == "PodOrdinal" {
				if n, err := strconv.ParseInt(s, 10, 64); err == nil {
					out[key] = int(n)
					continue
				}
			}
			out[key] = s
		}
	}
	return out, nil
}

func render(req request) (resp response) {
	defer func() {
		if r := recover(); r != nil {
			resp = response{Err: fmt.Sprintf("panic: %v", r)}
		}
	}()
	d, err := data(req.D)
	if err != nil {
		return response{Err: "bad data: " + err.Error()}
	}
	t, err := template.New("").Option("missingkey=error").Parse(req.T)
	if err != nil {
		return response{Err: err.Error()}
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return response{Err: err.Error()}
	}
	if !utf8.Valid(buf.Bytes()) {
		return response{Err: "output is not valid UTF-8"}
	}
	return response{OK: true, Out: buf.String()}
}

// renderWithin gives up on a template that runs too long (Go has no render limit: a template
// calling itself twice runs until its 100,000th nested call): the oracle exits, and the test
// reports the case instead of hanging.
func renderWithin(req request, limit time.Duration) response {
	done := make(chan response, 1)
	go func() { done <- render(req) }()
	select {
	case resp := <-done:
		return resp
	case <-time.After(limit):
		fmt.Fprintf(os.Stderr, "gotemplate-oracle: gave up after %v on template %q\n", limit, req.T)
		os.Exit(3)
		return response{}
	}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for in.Scan() {
		var req request
		var resp response
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			resp = response{Err: "bad request: " + err.Error()}
		} else {
			resp = renderWithin(req, 30*time.Second)
		}
		if err := enc.Encode(resp); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// One answer per line, flushed, so the caller can stream batches.
		out.Flush()
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
