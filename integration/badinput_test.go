package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

// rawCall sends a request with an optional token and returns status and body.
func rawCall(t *testing.T, h *head, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.url()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	h := startHead(t)
	c := h.client()
	createCluster(t, c, "good", 2, 60)
	before, _ := c.ListTargets(ctx(t))

	cases := []struct {
		name, method, path, token, body string
		status                          int
		want                            string
	}{
		{"missing token", "GET", "/v1/targets", "-", "", 401, "missing token"},
		{"wrong token", "GET", "/v1/targets", "amld_wrong", "", 401, "invalid token"},
		{"malformed json", "POST", "/v1/targets", "", `{"name": "x",`, 400, "malformed JSON"},
		{"unknown field", "POST", "/v1/targets", "", `{"name":"abc","vm_size":"cpu-2","max_nodes":1,"colour":"red"}`, 400, "colour"},
		{"wrong type", "POST", "/v1/targets", "", `{"name":"abc","vm_size":"cpu-2","max_nodes":"many"}`, 400, "max_nodes"},
		{"name too short", "POST", "/v1/targets", "", `{"name":"ab","vm_size":"cpu-2","max_nodes":1}`, 400, "3 to 24 characters"},
		{"name upper case", "POST", "/v1/targets", "", `{"name":"Abc","vm_size":"cpu-2","max_nodes":1}`, 400, "lower-case"},
		{"name starts with digit", "POST", "/v1/targets", "", `{"name":"1abc","vm_size":"cpu-2","max_nodes":1}`, 400, "starting with a letter"},
		{"name too long", "POST", "/v1/targets", "", `{"name":"abcdefghijklmnopqrstuvwxy","vm_size":"cpu-2","max_nodes":1}`, 400, "name"},
		{"duplicate name", "POST", "/v1/targets", "", `{"name":"good","vm_size":"cpu-2","max_nodes":1}`, 409, "already exists"},
		{"max_nodes missing", "POST", "/v1/targets", "", `{"name":"abc","vm_size":"cpu-2"}`, 400, "max_nodes is required"},
		{"max below min", "POST", "/v1/targets", "", `{"name":"abc","vm_size":"cpu-2","min_nodes":3,"max_nodes":2}`, 400, "min_nodes"},
		{"unknown size", "POST", "/v1/targets", "", `{"name":"abc","vm_size":"huge-9","max_nodes":1}`, 400, "cpu-2, cpu-4"},
		{"bad priority", "POST", "/v1/targets", "", `{"name":"abc","vm_size":"cpu-2","max_nodes":1,"vm_priority":"cheap"}`, 400, "dedicated, lowpriority"},
		{"unknown target", "GET", "/v1/targets/nope", "", "", 404, "no target"},
		{"update unknown target", "PATCH", "/v1/targets/nope", "", `{"max_nodes":3}`, 404, "no target"},
		{"update max below min", "PATCH", "/v1/targets/good", "", `{"min_nodes":5}`, 400, "min_nodes"},
		{"unknown run", "GET", "/v1/runs/run-nothere", "", "", 404, "no run"},
		{"cancel unknown run", "POST", "/v1/runs/run-nothere/cancel", "", "", 404, "no run"},
		{"submit to unknown target", "POST", "/v1/runs", "", `{"target":"nope","command":["true"]}`, 404, "no target"},
		{"submit without command", "POST", "/v1/runs", "", `{"target":"good"}`, 400, "command"},
		{"gang never fits", "POST", "/v1/runs", "", `{"target":"good","command":["true"],"node_count":3}`, 400, "max_nodes=2"},
		{"too many cpus", "POST", "/v1/runs", "", `{"target":"good","command":["true"],"resources":{"cpus":64}}`, 400, "resources.cpus"},
		{"bad env name", "POST", "/v1/runs", "", `{"target":"good","command":["true"],"env":{"1X":"y"}}`, 400, "env"},
		{"unknown source", "POST", "/v1/runs", "", `{"target":"good","command":["true"],"source_id":"b-nope"}`, 400, "source_id"},
		{"agent call with user token", "POST", "/v1/agent/heartbeat", "", `{"node_id":"n-x"}`, 403, "may not"},
		{"no such endpoint", "GET", "/v1/nothing", "", "", 404, "no such endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := h.token
			switch tc.token {
			case "-":
				tok = ""
			case "":
			default:
				tok = tc.token
			}
			status, body := rawCall(t, h, tc.method, tc.path, tok, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, body)
			}
			var env api.ErrorEnvelope
			if err := json.Unmarshal([]byte(body), &env); err != nil || env.Error == nil {
				t.Fatalf("body is not an error envelope: %s", body)
			}
			if !strings.Contains(env.Error.Message, tc.want) {
				t.Errorf("message %q does not mention %q", env.Error.Message, tc.want)
			}
			if strings.Contains(body, h.token) {
				t.Errorf("the answer leaks the admin token")
			}
		})
	}

	after, _ := c.ListTargets(ctx(t))
	if len(before) != len(after) || !reflect.DeepEqual(before[0].TargetSpec, after[0].TargetSpec) {
		t.Errorf("targets changed by refused requests:\nbefore %+v\nafter  %+v", before, after)
	}
	runs, _ := c.ListRuns(ctx(t), api.RunFilter{})
	if len(runs) != 0 {
		t.Errorf("%d runs exist after refused submits", len(runs))
	}
	if n := strings.Count(h.out.String(), h.token); n != 1 {
		t.Errorf("the admin token appears %d times in the head's output, want once (the bootstrap banner)", n)
	}
}
