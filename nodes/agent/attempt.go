package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/gpu"
	"github.com/amld/amld/internal/waits"
)

// DefaultMasterPort is MASTER_PORT for torch-style jobs.
const DefaultMasterPort = 29500

// attempt is one node's share of one attempt of a run, from assignment to
// final report.
type attempt struct {
	a   *Agent
	asg api.Assignment
	key api.AttemptKey
	log *slog.Logger

	// ctx ends when the agent stops or the head fences the attempt off:
	// either way the process is killed and nothing more is reported.
	ctx    context.Context
	cancel context.CancelFunc
	fenced atomic.Bool

	stopOnce  sync.Once
	stopCh    chan struct{} // closed when the head stopped or dropped the attempt
	stopWhy   string        // written before stopCh is closed
	stopGrace time.Duration // SIGTERM-to-SIGKILL grace of the stop; written before stopCh is closed

	done chan struct{} // closed when the attempt's goroutine returned

	// resending is set when the attempt only resends a saved final report
	// (owned by the goroutine that watches assignments).
	resending bool
	// restoredSum is the SHA-256 of the checkpoint dir as restored (tar'd
	// as uploads are), so an unchanged dir is not uploaded again. Owned by
	// the attempt's goroutine.
	restoredSum string
	// peers holds the states of the attempt's nodes as the head last sent
	// them; mpi is set by the attempt's goroutine before output is shipped
	// (runs whose nodes reach each other over SSH).
	peers peerWatch
	mpi   *mpiAttempt
}

func (a *Agent) newAttempt(ctx context.Context, asg api.Assignment) *attempt {
	ctx, cancel := context.WithCancel(ctx)
	k := asg.Key()
	return &attempt{
		a:      a,
		asg:    asg,
		key:    k,
		log:    a.log.With("run", k.RunID, "attempt", k.Attempt, "node_index", k.NodeIndex),
		ctx:    ctx,
		cancel: cancel,
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// goRun runs fn as the attempt's goroutine, owned by the agent.
func (at *attempt) goRun(fn func()) {
	at.a.wg.Add(1)
	go func() {
		defer at.a.wg.Done()
		defer close(at.done)
		defer at.cancel()
		fn()
	}()
}

// requestStop asks the attempt to stop, giving the command grace between
// SIGTERM and SIGKILL (none: SIGKILL at once); the first request wins.
func (at *attempt) requestStop(reason string, grace time.Duration) {
	at.stopOnce.Do(func() {
		at.stopWhy = reason
		at.stopGrace = grace
		close(at.stopCh)
	})
}

// fence records that the head refused a report of the attempt: it is
// killed and reported no more.
func (at *attempt) fence(err error) {
	if at.fenced.CompareAndSwap(false, true) {
		at.log.Info("the head fenced the attempt off; killing it", "err", err)
		at.cancel()
	}
}

// report sends st until the head takes it, fences the attempt, or the
// agent stops. It returns whether the head took it.
func (at *attempt) report(st api.AttemptStatus) bool {
	st.AttemptKey = at.key
	err := at.a.call(at.ctx, "report "+st.State, at.a.cfg.RequestTimeout, func(ctx context.Context, c *api.Client) error {
		return c.ReportStatus(ctx, st)
	})
	switch {
	case err == nil:
		return true
	case at.ctx.Err() != nil:
	case isFenced(err):
		at.fence(err)
	default:
		at.log.Warn("the head refused a status report", "state", st.State, "err", err)
	}
	return false
}

// run prepares the work dir, starts the command, and follows it.
func (at *attempt) run() {
	a := at.a
	dir := a.attemptDir(at.key)
	rt, rterr := at.runtime()
	rec := record{Key: at.key}
	if rt != nil {
		rec.Runtime = rt.Name()
	}
	if err := a.recs.put(rec); err != nil {
		at.finish(exitedWith(ExitPrepareFailed, "the agent could not record the attempt: "+err.Error()), "", nil)
		return
	}
	ckpt := a.checkpointDir(at.key)
	err := rterr
	if err == nil {
		err = at.prepare(dir, ckpt)
	}
	if err == nil {
		at.mpi, err = at.setupMPI(dir)
	}
	if mp := at.mpi; mp != nil {
		defer mp.close()
	}
	if err != nil {
		if at.ctx.Err() != nil {
			at.abandon(dir)
			return
		}
		at.log.Warn("could not prepare the attempt", "err", err)
		at.finish(exitedWith(ExitPrepareFailed, "preparing the attempt: "+err.Error()), dir, nil)
		return
	}
	env, command := at.env(dir, ckpt), at.asg.Run.Command
	if mp := at.mpi; mp != nil {
		env, command = append(env, mp.env()...), mp.command(command)
		if !mp.waitPeers() && at.ctx.Err() != nil {
			at.abandon(dir)
			return
		}
		// Before the command: node 0's mpirun may call this node at once.
		if err := mp.allow(rt, dir, env); err != nil {
			at.log.Warn("could not let the run's peers in", "err", err)
			at.finish(exitedWith(ExitPrepareFailed, "preparing the attempt: "+err.Error()), dir, nil)
			return
		}
	}
	select {
	case <-at.stopCh:
		at.finish(exitedWith(exitStoppedBeforeStart, at.stopWhy+" before it started"), dir, nil)
		return
	default:
	}
	h, err := rt.Start(at.ctx, Spec{
		Key:           at.key,
		Image:         at.asg.Run.Environment.Image,
		Command:       command,
		Dir:           dir,
		CheckpointDir: ckpt,
		Env:           env,
		Allocation:    at.asg.Allocation,
	})
	if err != nil {
		if at.ctx.Err() != nil {
			at.abandon(dir)
			return
		}
		code, reason := ExitPrepareFailed, err.Error()
		var se *StartError
		if errors.As(err, &se) {
			code = se.Code
		}
		at.log.Warn("the command could not be started", "err", err)
		at.finish(exitedWith(code, reason), dir, nil)
		return
	}
	if mp := at.mpi; mp != nil {
		mp.started(h) // before the running report: node 0 starts mpirun once the others run
	}
	rec.Started = time.Now()
	if err := a.recs.put(rec); err != nil {
		at.log.Warn("could not save the attempt record", "err", err)
	}
	at.log.Info("attempt started", "runtime", rt.Name())
	at.follow(h, dir, rec.Started, false)
}

// resume follows a command an earlier agent process started, when its
// runtime can adopt it (a container still there, running or exited);
// otherwise the attempt is reported lost.
func (at *attempt) resume(rec record) {
	ad, ok := at.a.runtimes[rec.Runtime].(Adopter)
	if !ok {
		at.lost()
		return
	}
	for try := 1; ; try++ {
		h, err := ad.Adopt(at.ctx, at.a.NodeID(), at.key)
		switch {
		case at.ctx.Err() != nil:
			return
		case err == nil && h == nil:
			at.lost()
			return
		case err == nil:
			at.log.Info("re-adopted the attempt an earlier agent process started", "runtime", rec.Runtime)
			at.follow(h, at.a.attemptDir(at.key), rec.Started, true)
			return
		case try == 3:
			at.log.Warn("could not look for the attempt's command", "err", err)
			at.lost()
			return
		}
		waits.Sleep(at.ctx, time.Second)
	}
}

// follow ships the running command's output, waits for it to end (or
// stops it), collects outputs and reports the end. started is when the
// command started (max_run_duration_seconds counts from there); adopted
// says an earlier agent process reported it running already.
func (at *attempt) follow(h Handle, dir string, started time.Time, adopted bool) {
	rep := at.startReporter()
	if !adopted {
		rep.send(api.AttemptStatus{State: api.AttemptRunning})
	}
	sh := at.ship(h.Output())
	cp := at.startCheckpoints(at.a.checkpointDir(at.key))
	end := at.supervise(h, started)
	if mp := at.mpi; mp != nil {
		mp.close() // the daemons started over SSH end with the attempt
	}
	sh.wait() // all output shipped (or given up) before the end is reported
	cp.stop()
	if end == endDetached {
		// The agent stops and leaves the command running: the record and
		// the work dir stay for the agent that adopts it.
		rep.closeWait()
		at.log.Info("agent stopping: the attempt's container goes on running")
		return
	}
	if at.ctx.Err() != nil {
		rep.closeWait()
		at.removeLeftovers(h)
		at.abandon(dir)
		return
	}
	code := h.ExitCode()
	if end != endExited || code != 0 {
		// What the command left in its checkpoint dir goes to the head
		// before the end is reported: the next attempt starts from it.
		cp.upload()
		if at.ctx.Err() != nil {
			rep.closeWait()
			at.abandon(dir)
			return
		}
	}
	var st api.AttemptStatus
	switch end {
	case endStopped:
		st = exitedWith(code, at.stopWhy)
		st.Stopped = true
	case endTimedOut:
		st = exitedWith(code, fmt.Sprintf("exceeded max_run_duration_seconds=%d", at.asg.Run.MaxRunDurationSeconds))
		st.TimedOut = true
	default:
		rep.send(api.AttemptStatus{State: api.AttemptFinalizing})
		st = exitedWith(code, "")
		if code != 0 {
			st.Reason = fmt.Sprintf("exit code %d", code)
			if why, lost := at.mpi.failure(); why != "" {
				st.Reason, st.Lost = why, lost
			} else if en, ok := h.(ExitNote); ok && en.ExitNote() != "" {
				st.Reason += ": " + en.ExitNote()
			}
		}
		if at.key.NodeIndex == 0 {
			id, note := at.collectOutputs(filepath.Join(dir, "outputs"))
			st.OutputsID = id
			if note != "" && st.Reason != "" {
				st.Reason += "; " + note
			} else if note != "" {
				st.Reason = note
			}
		}
	}
	at.removeLeftovers(h)
	at.log.Info("attempt ended", "exit_code", code, "reason", st.Reason)
	at.finish(st, dir, rep)
}

// removeLeftovers removes what the ended command left behind (its
// container), once its outputs were collected.
func (at *attempt) removeLeftovers(h Handle) {
	rm, ok := h.(Remover)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rm.Remove(ctx); err != nil {
		at.log.Warn("could not remove the attempt's container", "err", err)
	}
}

// ending says how a command's run ended.
type ending int

const (
	endExited   ending = iota // the command exited by itself
	endStopped                // the head stopped or dropped the attempt
	endTimedOut               // it ran past max_run_duration_seconds
	endAborted                // the agent stops, or the attempt was fenced off
	endDetached               // the agent stops and left the command running
)

// supervise waits for the command to end, killing it when it is stopped,
// runs too long, or the agent stops (unless the agent keeps containers:
// then a container is left running, detached).
func (at *attempt) supervise(h Handle, started time.Time) ending {
	var timeout <-chan time.Time
	if n := at.asg.Run.MaxRunDurationSeconds; n > 0 {
		left := time.Duration(n) * time.Second
		if !started.IsZero() {
			left -= time.Since(started)
		}
		t := time.NewTimer(max(left, 0))
		defer t.Stop()
		timeout = t.C
	}
	var end ending
	select {
	case <-h.Done():
		return endExited
	case <-at.stopCh:
		end = endStopped
		at.log.Info("stopping the attempt", "reason", at.stopWhy)
	case <-timeout:
		end = endTimedOut
		at.log.Info("the attempt ran past max_run_duration_seconds; killing it")
	case <-at.ctx.Done():
		if d, ok := h.(Detacher); ok && at.keepOnStop() {
			d.Detach()
			return endDetached
		}
		end = endAborted
	}
	grace := at.a.cfg.KillGrace
	switch {
	case end == endStopped:
		grace = at.stopGrace
	case end == endAborted && at.fenced.Load():
		grace = 0 // the head gave the run to another attempt: no grace
	}
	at.terminate(h, grace)
	return end
}

// keepOnStop reports whether the attempt's command is to be left running
// now that its context ended: the agent keeps containers and merely stops,
// rather than the head fencing the attempt off or removing the node.
func (at *attempt) keepOnStop() bool {
	if !at.a.cfg.KeepContainers || at.fenced.Load() {
		return false
	}
	select {
	case <-at.a.removed:
		return false
	default:
		return true
	}
}

// terminate sends SIGTERM to the attempt's processes and SIGKILL after
// grace (at once when grace is 0), and waits until they are gone.
func (at *attempt) terminate(h Handle, grace time.Duration) {
	if grace <= 0 {
		if err := h.Signal(syscall.SIGKILL); err != nil {
			at.log.Warn("could not kill the attempt", "err", err)
		}
		<-h.Done()
		return
	}
	if err := h.Signal(syscall.SIGTERM); err != nil {
		at.log.Warn("could not signal the attempt", "err", err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-h.Done():
		return
	case <-t.C:
	}
	at.log.Info("the attempt outlived its grace period; killing it", "grace", grace)
	if err := h.Signal(syscall.SIGKILL); err != nil {
		at.log.Warn("could not kill the attempt", "err", err)
	}
	<-h.Done()
}

// finish saves st as the attempt's final report (resent after a restart
// until taken), reports it (through rep when the attempt has one), and
// removes the work dir.
func (at *attempt) finish(st api.AttemptStatus, dir string, rep *reporter) {
	st.AttemptKey = at.key
	if err := at.a.recs.put(record{Key: at.key, Done: true, Final: &st}); err != nil && safeName(at.key.RunID) {
		at.log.Warn("could not save the attempt record", "err", err)
	}
	if rep != nil {
		rep.send(st)
		rep.closeWait()
	} else if at.ctx.Err() == nil {
		at.report(st)
	}
	if dir != "" {
		if err := removeAll(dir); err != nil {
			at.log.Warn("could not remove the attempt's work dir", "err", err)
		}
		at.a.removeCheckpointDir(at.key)
	}
}

// abandon ends an attempt the agent no longer reports: the agent stops (the
// record stays, so a restarted agent reports the attempt lost) or the head
// fenced it off.
func (at *attempt) abandon(dir string) {
	if at.fenced.Load() {
		if err := at.a.recs.put(record{Key: at.key, Done: true}); err != nil {
			at.log.Warn("could not save the attempt record", "err", err)
		}
	}
	if err := removeAll(dir); err != nil {
		at.log.Warn("could not remove the attempt's work dir", "err", err)
	}
	at.a.removeCheckpointDir(at.key)
}

// lost reports an attempt an earlier agent process started: its process
// died with that agent.
func (at *attempt) lost() {
	at.log.Warn("an earlier agent process started this attempt; reporting it lost")
	at.finish(api.AttemptStatus{State: api.AttemptExited, Lost: true, Reason: "agent restarted; the attempt's process was lost"},
		at.a.attemptDir(at.key), nil)
}

// resend sends again the final report an earlier agent process saved.
func (at *attempt) resend(final *api.AttemptStatus) {
	if final != nil {
		at.report(*final)
	}
}

// runtime picks the runtime for the attempt's environment.
func (at *attempt) runtime() (Runtime, error) {
	if img := at.asg.Run.Environment.Image; img != "" {
		if rt := at.a.runtimes["docker"]; rt != nil {
			return rt, nil
		}
		return nil, fmt.Errorf("the run's image %q needs the docker runtime, which this node does not have", img)
	}
	if rt := at.a.runtimes["process"]; rt != nil {
		return rt, nil
	}
	return nil, errors.New("this node has no process runtime for a run without an image")
}

// prepare makes the work dir with the source snapshot and outputs/, and
// the attempt's checkpoint dir with the run's latest checkpoint in it.
func (at *attempt) prepare(dir, ckpt string) error {
	if err := removeAll(dir); err != nil { // a stale one from a crash
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if id := at.asg.Run.SourceID; id != "" {
		buf := &capBuffer{limit: 2 * api.MaxSourceBytes}
		err := at.a.call(at.ctx, "download source", at.a.cfg.RequestTimeout, func(ctx context.Context, c *api.Client) error {
			buf.Reset()
			err := c.DownloadBlob(ctx, id, buf)
			if errors.Is(err, errTooLarge) {
				return api.TooLarge("source snapshot %s is larger than %d bytes", id, buf.limit)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("download source snapshot %s: %w", id, err)
		}
		if err := extractSource(&buf.Buffer, dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "outputs"), 0o755); err != nil {
		return err
	}
	return at.restoreCheckpoint(ckpt)
}

// env is what the command gets on top of the runtime's base environment.
func (at *attempt) env(dir, ckpt string) []string {
	run, asg := at.asg.Run, at.asg
	nodes := run.NodeCount
	if nodes <= 0 {
		nodes = max(len(asg.Peers), api.DefaultNodeCount)
	}
	ppn := run.ProcessCountPerNode
	if ppn <= 0 {
		ppn = api.DefaultProcessCountPerNode
	}
	master := "127.0.0.1"
	if len(asg.Peers) > 0 {
		master = hostOf(asg.Peers[0])
	}
	env := []string{"PYTHONUNBUFFERED=1"} // the run's env may turn it off
	for _, k := range slices.Sorted(maps.Keys(run.Env)) {
		env = append(env, k+"="+run.Env[k])
	}
	rank := strconv.Itoa(at.key.NodeIndex)
	env = append(env,
		"AML_RUN_ID="+at.key.RunID,
		"AML_ATTEMPT="+strconv.Itoa(at.key.Attempt),
		"AML_NODE_RANK="+rank,
		"NODE_RANK="+rank,
		"AML_NODE_COUNT="+strconv.Itoa(nodes),
		"WORLD_SIZE="+strconv.Itoa(nodes*ppn),
		"AML_OUTPUT_DIR="+filepath.Join(dir, "outputs"),
		"AML_CHECKPOINT_DIR="+ckpt,
		"MASTER_ADDR="+master,
		"MASTER_PORT="+strconv.Itoa(DefaultMasterPort),
	)
	// The devices the attempt holds, by UUID; a run holding none on a GPU
	// node is shown none.
	env = append(env, gpu.VisibleDevicesEnv(asg.Allocation.GPUUUIDs, len(at.a.cfg.GPUs) > 0)...)
	return env
}

// hostOf is the host part of a peer address (host or host:port).
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return strings.Trim(addr, "[]")
}

// collectOutputs uploads outputs/ as a gzip'd tar. It returns the blob's ID
// ("" when there is nothing, or nothing could be sent) and a note for the
// reason when outputs were not uploaded.
func (at *attempt) collectOutputs(dir string) (id, note string) {
	data, err := tarOutputs(dir, api.MaxOutputsBytes)
	switch {
	case errors.Is(err, errTooLarge):
		return "", fmt.Sprintf("outputs not uploaded: larger than %d MiB gzip'd", api.MaxOutputsBytes>>20)
	case err != nil:
		return "", "outputs not uploaded: " + err.Error()
	case data == nil:
		return "", ""
	}
	var ref *api.BlobRef
	err = at.a.call(at.ctx, "upload outputs", at.a.cfg.RequestTimeout, func(ctx context.Context, c *api.Client) error {
		r, err := c.UploadOutputs(ctx, at.key, data)
		ref = r
		return err
	})
	switch {
	case err == nil:
		return ref.ID, ""
	case at.ctx.Err() != nil:
		return "", ""
	case isFenced(err):
		at.fence(err)
		return "", ""
	}
	at.log.Warn("the head refused the outputs", "err", err)
	return "", "outputs not uploaded: " + err.Error()
}

// reporter sends an attempt's reports in order, each until it is taken, so
// a slow head never holds up the attempt itself.
type reporter struct {
	ch   chan api.AttemptStatus
	done chan struct{}
}

// startReporter starts the attempt's reporter; the attempt's goroutine
// waits for it with closeWait.
func (at *attempt) startReporter() *reporter {
	r := &reporter{ch: make(chan api.AttemptStatus, 4), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for st := range r.ch {
			if at.ctx.Err() == nil {
				at.report(st)
			}
		}
	}()
	return r
}

// send queues st (an attempt makes at most three reports).
func (r *reporter) send(st api.AttemptStatus) { r.ch <- st }

// closeWait waits until every queued report was sent or given up.
func (r *reporter) closeWait() {
	close(r.ch)
	<-r.done
}
