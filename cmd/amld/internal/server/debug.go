package server

import (
	"net/http"
	"net/http/pprof"
	rpprof "runtime/pprof"

	"github.com/amld/amld/api"
)

// debugRoutes serves Go's runtime profiles under /v1/debug/pprof/ to
// admins, when the head runs with --enable-debug (as Nomad's enable_debug
// does): `curl -H "Authorization: Bearer $ADMIN" .../v1/debug/pprof/profile?seconds=10`.
// The command line (pprof's cmdline) is not served: secrets are passed in
// files today, and it stays that way if a flag ever takes one.
func (s *Server) debugRoutes(mux *http.ServeMux) {
	if !s.cfg.EnableDebug {
		return
	}
	mux.HandleFunc("GET /v1/debug/pprof/{$}", s.guard(allowAdmin, func(w http.ResponseWriter, r *http.Request) error {
		pprof.Index(w, r)
		return nil
	}))
	mux.HandleFunc("GET /v1/debug/pprof/{name}", s.guard(allowAdmin, func(w http.ResponseWriter, r *http.Request) error {
		switch name := r.PathValue("name"); name {
		case "profile":
			pprof.Profile(w, r)
		case "symbol":
			pprof.Symbol(w, r)
		case "trace":
			pprof.Trace(w, r)
		default:
			if rpprof.Lookup(name) == nil {
				return api.NotFound("no profile %q (/v1/debug/pprof/ lists them)", name)
			}
			pprof.Handler(name).ServeHTTP(w, r)
		}
		return nil
	}))
}
