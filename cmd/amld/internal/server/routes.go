package server

import "net/http"

// routes maps the API. Every endpoint but /v1/status needs a token.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	const users = allowUser | allowAdmin

	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("GET /v1/whoami", s.guard(users|allowNode, s.handleWhoami))
	mux.HandleFunc("POST /v1/users", s.guard(allowAdmin, s.handleCreateUser))
	mux.HandleFunc("GET /v1/users", s.guard(allowAdmin, s.handleListUsers))

	mux.HandleFunc("GET /v1/vm-sizes", s.guard(users, s.handleListSizes))
	mux.HandleFunc("POST /v1/targets", s.guard(users, s.handleCreateTarget))
	mux.HandleFunc("GET /v1/targets", s.guard(users, s.handleListTargets))
	mux.HandleFunc("GET /v1/targets/{name}", s.guard(users, s.handleGetTarget))
	mux.HandleFunc("PATCH /v1/targets/{name}", s.guard(users, s.handleUpdateTarget))
	mux.HandleFunc("DELETE /v1/targets/{name}", s.guard(users, s.handleDeleteTarget))
	mux.HandleFunc("GET /v1/targets/{name}/nodes", s.guard(users, s.handleListNodes))
	mux.HandleFunc("POST /v1/targets/{name}/simulate-eviction", s.guard(users, s.handleSimulateEviction))

	mux.HandleFunc("POST /v1/blobs", s.guard(users, s.handleUploadSource))
	mux.HandleFunc("GET /v1/blobs/{id}", s.guard(users|allowNode, s.handleGetBlob))
	mux.HandleFunc("POST /v1/runs", s.guard(users, s.handleSubmitRun))
	mux.HandleFunc("GET /v1/runs", s.guard(users, s.handleListRuns))
	mux.HandleFunc("GET /v1/runs/{id}", s.guard(users, s.handleGetRun))
	mux.HandleFunc("POST /v1/runs/{id}/cancel", s.guard(users, s.handleCancelRun))
	mux.HandleFunc("GET /v1/runs/{id}/logs", s.guard(users, s.handleLogs))
	mux.HandleFunc("GET /v1/runs/{id}/outputs", s.guard(users, s.handleOutputs))

	mux.HandleFunc("POST /v1/hosts", s.guard(users, s.handleAttach))
	mux.HandleFunc("GET /v1/hosts", s.guard(users, s.handleListHosts))
	mux.HandleFunc("GET /v1/hosts/{name}", s.guard(users, s.handleGetHost))
	mux.HandleFunc("DELETE /v1/hosts/{name}", s.guard(users, s.handleDetach))
	mux.HandleFunc("GET /v1/ssh-host-key", s.guard(users, s.handleHostKey))
	mux.HandleFunc("POST /v1/targets/{name}/start", s.guard(users, s.handlePower("start")))
	mux.HandleFunc("POST /v1/targets/{name}/stop", s.guard(users, s.handlePower("stop")))
	mux.HandleFunc("POST /v1/targets/{name}/restart", s.guard(users, s.handlePower("restart")))

	mux.HandleFunc("POST /v1/agent/register", s.guard(allowJoin, s.handleRegister))
	mux.HandleFunc("POST /v1/agent/heartbeat", s.guard(allowNode, s.handleHeartbeat))
	mux.HandleFunc("GET /v1/agent/assignments", s.guard(allowNode, s.handleAssignments))
	mux.HandleFunc("POST /v1/agent/status", s.guard(allowNode, s.handleAttemptStatus))
	mux.HandleFunc("POST /v1/agent/logs", s.guard(allowNode, s.handleAgentLogs))
	mux.HandleFunc("POST /v1/agent/outputs", s.guard(allowNode, s.handleAgentOutputs))
	mux.HandleFunc("POST /v1/agent/checkpoints", s.guard(allowNode, s.handleAgentCheckpointPut))
	mux.HandleFunc("GET /v1/agent/checkpoints", s.guard(allowNode, s.handleAgentCheckpointGet))

	s.clusterRoutes(mux)
	s.debugRoutes(mux)
	mux.HandleFunc("/", notFoundHandler)
	return mux
}
