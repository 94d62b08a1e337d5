package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/raftstore"
	fastjson "github.com/segmentio/encoding/json"
)

// maxJSONBody caps a JSON request body.
const maxJSONBody = 1 << 20

// maxWait caps a blocking query's wait.
const maxWait = 5 * time.Minute

// decodeBody decodes one JSON object into v strictly: unknown fields,
// trailing data and oversized bodies are 400s naming the problem. v must
// point to a zero value.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxJSONBody))
	if err != nil {
		return bodyError(err)
	}
	return decodeJSON(body, v)
}

// decodeJSON is decodeBody's decoder. github.com/segmentio/encoding/json
// reads a submit's body two to five times quicker than encoding/json (the
// decode was a twentieth of the leader's CPU under a burst of submits), so
// it goes first; a body it refuses is decoded again by encoding/json,
// whose answer, value or error, is the one given. The two agree on every
// body the fast one takes (FuzzDecodeJSONLikeEncodingJSON), so a caller
// gets exactly what encoding/json alone would give, error messages
// included.
func decodeJSON(data []byte, v any) error {
	if rest, err := fastjson.Parse(data, v, fastjson.DisallowUnknownFields); err == nil && len(bytes.TrimLeft(rest, " \t\r\n")) == 0 {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero() // what the fast decoder left
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if dec.More() {
		return api.Invalid("body", "malformed JSON: more than one value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return api.Invalid("body", "malformed JSON: trailing data after the object")
	}
	return nil
}

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return api.TooLarge("request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return api.Invalid("body", "is empty; a JSON object is required")
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "body"
		}
		return api.Invalid(field, "must be %s, got JSON %s", jsonKind(ute.Type.Kind().String()), ute.Value)
	case errors.As(err, &se):
		return api.Invalid("body", "malformed JSON at byte %d: %v", se.Offset, se)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return api.Invalid(f, "unknown field")
	}
	return api.Invalid("body", "malformed JSON: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "int32", "uint64", "float64":
		return "a number"
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "map", "struct", "ptr":
		return "an object"
	case "bool":
		return "true or false"
	}
	return k
}

// writeJSON writes v with status and the state index header.
func writeJSON(w http.ResponseWriter, status int, index uint64, v any) {
	w.Header().Set("Content-Type", "application/json")
	if index > 0 {
		w.Header().Set(api.IndexHeader, strconv.FormatUint(index, 10))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError maps err to its HTTP answer. Internal errors are logged and
// answered in general words: their text may hold paths or internals. A
// submit a follower took itself is handed to the leader instead, unless
// the leader gave the error (forward_submit.go).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if s.leaderDecides(w, r, err) {
		return
	}
	ae, internal := apiErrorOf(err)
	if internal {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, ae.Status, 0, api.ErrorEnvelope{Error: ae})
}

// apiErrorOf is the API's answer to err; internal reports an error that
// is not the caller's (its text is replaced by general words).
func apiErrorOf(err error) (ae *api.Error, internal bool) {
	switch {
	case errors.As(err, &ae):
		return ae, false
	case errors.Is(err, raftstore.ErrNotLeader):
		return api.Unavailable("this head is not the leader and no leader is known yet; retry shortly"), false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return api.Unavailable("the request did not complete in time; retry"), false
	}
	return &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "internal error; see the head's log"}, true
}

// waitParams reads `index` and `wait` of a blocking query.
func waitParams(r *http.Request) (uint64, time.Duration, error) {
	q := r.URL.Query()
	var idx uint64
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, api.Invalid("index", "must be a non-negative integer, got %q", v)
		}
		idx = n
	}
	wait := 30 * time.Second
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, api.Invalid("wait", "must be a duration such as 30s, got %q", v)
		}
		wait = min(d, maxWait)
	}
	return idx, wait, nil
}

// intParam reads an optional integer query parameter in [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, api.Invalid(name, "must be an integer in %d..%d, got %q", lo, hi, v)
	}
	return n, nil
}

// accessLog logs each request at debug level (never its headers: they
// carry tokens).
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		next.ServeHTTP(sw, r)
		log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "dur", time.Since(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func notFoundHandler(w http.ResponseWriter, r *http.Request) {
	e := api.NotFound("no such endpoint: %s %s", r.Method, r.URL.Path)
	writeJSON(w, e.Status, 0, api.ErrorEnvelope{Error: e})
}
