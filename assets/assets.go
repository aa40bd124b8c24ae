// Package assets holds the static files the pages use, embedded in the
// binary and served under content-hashed names so browsers may cache them
// forever and still never run a stale copy.
package assets

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

var (
	hashed   = map[string]string{} // "style.css" → "style.1a2b3c4d.css"
	unhashed = map[string]string{} // and back
)

func init() {
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		sum := sha256.Sum256(b)
		ext := path.Ext(name)
		h := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:4]) + ext
		hashed[name], unhashed[h] = h, name
		return nil
	})
	if err != nil {
		panic(err)
	}
}

// Path returns the URL path of the named asset under prefix, with its
// content hash in the name. An unknown name panics: it is a programming
// error caught by any test that renders the page.
func Path(prefix, name string) string {
	h, ok := hashed[name]
	if !ok {
		panic("assets: no file " + name)
	}
	return prefix + h
}

// Handler serves the assets under prefix. Hashed names are cached for a
// year; anything else is 404.
func Handler(prefix string) http.Handler {
	sub, _ := fs.Sub(files, "static")
	fileServer := http.FileServerFS(sub)
	return http.StripPrefix(prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := unhashed[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		fileServer.ServeHTTP(w, r2)
	}))
}
