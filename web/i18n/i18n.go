// Package i18n holds every string the pages show, in Chinese (the
// default) and English. Components never hard-code text: they ask a
// Printer for a message by key. Each area of the UI keeps its messages in
// its own messages/*.tsv file (key, Chinese, English); a malformed line or
// a key defined twice panics at start, and the tests check that every
// message has both languages.
package i18n

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
)

// Lang is a supported language.
type Lang string

// Supported languages. Chinese is the default.
const (
	ZH Lang = "zh-CN"
	EN Lang = "en"
)

// Langs lists the supported languages, default first.
var Langs = []Lang{ZH, EN}

// Msg is one message in both languages. Arguments follow fmt verbs, and
// both texts must use the same verbs in the same order.
type Msg struct{ ZH, EN string }

var catalog = map[string]Msg{}

// messageFiles are the catalogs, one per area of the UI. They are data,
// not code, so a translator edits them without touching Go.
//
//go:embed messages/*.tsv
var messageFiles embed.FS

func init() {
	files, err := fs.Glob(messageFiles, "messages/*.tsv")
	if err != nil {
		panic(err)
	}
	for _, name := range files {
		data, err := messageFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		msgs, err := parseCatalog(data)
		if err != nil {
			panic("i18n: " + name + ": " + err.Error())
		}
		register(msgs)
	}
}

// register adds messages; a key in two catalogs is a mistake.
func register(msgs map[string]Msg) {
	for k, m := range msgs {
		if _, dup := catalog[k]; dup {
			panic("i18n: message " + k + " defined twice")
		}
		catalog[k] = m
	}
}

// parseCatalog reads one catalog: a line per message, its key, Chinese
// and English text separated by tabs; empty lines and lines starting with
// # are comments. Both texts are required and a key appears once.
func parseCatalog(data []byte) (map[string]Msg, error) {
	msgs := map[string]Msg{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		text := strings.TrimSuffix(string(line), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, m, err := parseMessage(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if _, dup := msgs[key]; dup {
			return nil, fmt.Errorf("line %d: message %s defined twice", n+1, key)
		}
		msgs[key] = m
	}
	return msgs, nil
}

// parseMessage reads one "key<TAB>zh<TAB>en" line.
func parseMessage(line string) (string, Msg, error) {
	f := strings.Split(line, "\t")
	if len(f) != 3 {
		return "", Msg{}, fmt.Errorf("want key, Chinese and English separated by tabs, got %d fields", len(f))
	}
	key, m := f[0], Msg{ZH: f[1], EN: f[2]}
	switch {
	case key == "" || strings.TrimSpace(key) != key || strings.ContainsAny(key, " "):
		return "", Msg{}, fmt.Errorf("bad key %q", key)
	case strings.TrimSpace(m.ZH) == "" || strings.TrimSpace(m.EN) == "":
		return "", Msg{}, errors.New("message " + key + " lacks a language")
	}
	return key, m, nil
}

// Keys returns every message key (for tests).
func Keys() []string {
	keys := make([]string, 0, len(catalog))
	for k := range catalog {
		keys = append(keys, k)
	}
	return keys
}

// Lookup returns the message for key and whether it exists.
func Lookup(key string) (Msg, bool) {
	m, ok := catalog[key]
	return m, ok
}

// Printer renders messages in one language.
type Printer struct{ Lang Lang }

// T returns the message key in p's language, formatted with args. An
// unknown key renders as itself in brackets, visible in any test that
// renders the page.
func (p Printer) T(key string, args ...any) string {
	m, ok := catalog[key]
	if !ok {
		return "[" + key + "]"
	}
	s := m.ZH
	if p.Lang == EN {
		s = m.EN
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Other returns the language that is not p's (for the switch link).
func (p Printer) Other() Lang {
	if p.Lang == EN {
		return ZH
	}
	return EN
}

// OtherT is T in the other language: a message that must be read by
// whoever stands at the screen (the gate's result panel) is shown in both.
func (p Printer) OtherT(key string, args ...any) string {
	return Printer{Lang: p.Other()}.T(key, args...)
}

// CookieName remembers the language chosen in a browser.
const CookieName = "passgate_lang"

// Parse returns the supported language s names, and false if none.
func Parse(s string) (Lang, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "zh", "zh-cn", "zh-hans", "zh-hans-cn":
		return ZH, true
	case "en", "en-us", "en-gb":
		return EN, true
	}
	return "", false
}

// FromRequest picks the language of a request: the browser's remembered
// choice, else Chinese. Accept-Language is deliberately not consulted: the
// appliance serves Chinese staff first, whatever the device's setting.
func FromRequest(r *http.Request) Printer {
	if c, err := r.Cookie(CookieName); err == nil {
		if l, ok := Parse(c.Value); ok {
			return Printer{Lang: l}
		}
	}
	return Printer{Lang: ZH}
}
