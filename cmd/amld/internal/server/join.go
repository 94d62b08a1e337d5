package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/amld/amld/api"
	"github.com/amld/amld/cmd/amld/internal/pki"
	"github.com/amld/amld/internal/waits"
	"github.com/amld/amld/raftstore"
)

// joinCluster returns once this head's state is open: at once for a
// member; otherwise after bootstrapping (--bootstrap-expect) or joining
// (--join, or an invitation from `amlctl server join`).
func (s *Server) joinCluster(ctx context.Context) error {
	if s.storeIsOpen() {
		return nil
	}
	cc := s.cfg.Cluster
	addrs := cc.Join
	if cc.BootstrapExpect > 1 {
		boot, err := s.discover(ctx)
		if err != nil {
			return err
		}
		if boot {
			s.log.Info("bootstrapping the cluster", "expect", cc.BootstrapExpect)
			if err := s.cluster.makeCA(s.cfg.ID, s.log); err != nil {
				return err
			}
			if err := s.cluster.writeMark(memberMark{Role: roleBootstrap}); err != nil {
				return err
			}
			s.cluster.bootstrapper = true
			if err := s.cluster.loadTLS(s.cfg.ID); err != nil {
				return err
			}
			return s.openStore(true)
		}
	}
	if len(addrs) == 0 {
		s.log.Info("waiting to be joined to a cluster (amlctl server join " + s.addr + ")")
		select {
		case addrs = <-s.cluster.invite:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.joinVia(ctx, addrs)
}

// discover says hello to the --join peers until BootstrapExpect heads
// without state see each other (then the smallest ID bootstraps: true), or
// a peer already belongs to a cluster (join it: false).
func (s *Server) discover(ctx context.Context) (bool, error) {
	cc := s.cfg.Cluster
	last := time.Time{}
	for {
		self := s.selfInfo()
		ids := []string{self.ID}
		var mu sync.Mutex
		member := false
		var wg sync.WaitGroup
		for _, a := range cc.Join {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				var peer headInfo
				if err := s.peerCall(cctx, a, "hello", self, &peer); err != nil {
					if api.StatusOf(err) == 401 {
						s.log.Warn("peer refused hello", "peer", a, "err", err)
					}
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if peer.Member {
					member = true
				} else if !slices.Contains(ids, peer.ID) {
					ids = append(ids, peer.ID)
				} else if peer.ID == self.ID {
					s.log.Error("two heads have the same ID; give each its own --id", "id", peer.ID, "peer", a)
				}
			}()
		}
		wg.Wait()
		if member {
			return false, nil
		}
		if len(ids) >= cc.BootstrapExpect {
			return slices.Min(ids) == self.ID, nil
		}
		if time.Since(last) > 5*time.Second {
			s.log.Info("waiting for heads", "expect", cc.BootstrapExpect, "seen", len(ids))
			last = time.Now()
		}
		if !waits.Sleep(ctx, 300*time.Millisecond) {
			return false, ctx.Err()
		}
	}
}

// joinVia gets a head certificate from the cluster's leader through one
// of addrs, opens the state, and has the leader make this head a voter.
func (s *Server) joinVia(ctx context.Context, addrs []string) error {
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		return err
	}
	pub, err := pki.MarshalPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	req := joinRequest{Head: s.selfInfo(), PublicKey: pub, Hosts: s.cluster.hosts}
	var resp joinResponse
	if err := s.untilDone(ctx, addrs, "join", req, &resp); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.cfg.DataDir, tlsDir), 0o700); err != nil {
		return err
	}
	for name, b := range map[string]string{"head.key": string(keyPEM), "head.crt": resp.CertPEM, "ca.crt": resp.CACertPEM} {
		if err := writeSecret(s.cluster.tlsPath(name), b); err != nil {
			return err
		}
	}
	if err := s.cluster.writeMark(memberMark{Role: roleJoining, Join: addrs}); err != nil {
		return err
	}
	if err := s.cluster.loadTLS(s.cfg.ID); err != nil {
		return err
	}
	s.log.Info("got a head certificate; joining", "via", addrs)
	return s.openStore(false)
}

// untilDone sends a peer call to each address in turn until one succeeds.
func (s *Server) untilDone(ctx context.Context, addrs []string, op string, req, resp any) error {
	last := time.Time{}
	for {
		var lastErr error
		for _, a := range addrs {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := s.peerCall(cctx, a, op, req, resp)
			cancel()
			if err == nil {
				return nil
			}
			lastErr = err
			if api.StatusOf(err) == 401 || api.StatusOf(err) == 409 || api.StatusOf(err) == 400 {
				return fmt.Errorf("%s via %s: %w", op, a, err)
			}
		}
		if time.Since(last) > 5*time.Second {
			s.log.Info("waiting for the cluster's leader", "op", op, "err", lastErr)
			last = time.Now()
		}
		if !waits.Sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// registerLoop keeps this head's entry in the replicated heads table right
// and, while it is joining, asks the leader to make it a voter.
func (s *Server) registerLoop(ctx context.Context) {
	warned := false
	for ctx.Err() == nil {
		wait := 10 * time.Second
		if err := s.registerOnce(ctx); err != nil {
			wait = 500 * time.Millisecond
			if errors.Is(err, errRemoved) {
				if !warned {
					s.log.Error("this head was removed from its cluster; stop it, and empty its data dir before it joins again")
					warned = true
				}
				wait = 30 * time.Second
			}
		} else if s.cluster.role() == roleJoining {
			wait = 500 * time.Millisecond
		}
		if !waits.Sleep(ctx, wait) {
			return
		}
	}
}

var errRemoved = errors.New("removed from the cluster")

func (s *Server) registerOnce(ctx context.Context) error {
	self := s.selfInfo()
	role := s.cluster.role()
	if role == roleJoining {
		// Confirmed once the state shows this head as a voter.
		if ms, err := s.store.Members(ctx); err == nil {
			for _, m := range ms {
				if m.ID == self.ID && m.Voter && s.store.State().Head(self.ID) != nil {
					s.log.Info("joined the cluster as a voter")
					return s.cluster.writeMark(memberMark{Role: roleJoined})
				}
			}
		}
	} else {
		st := s.store.State()
		if st.Meta() == nil {
			return errors.New("not caught up")
		}
		if h := st.Head(self.ID); h != nil && h.APIAddr == self.APIAddr && h.RaftAddr == self.RaftAddr && h.LogVersion == self.LogVersion {
			return nil
		}
	}
	if s.store.IsLeader() {
		return s.addHead(ctx, self, role == roleJoining)
	}
	addrs := []string{}
	if a := s.leaderAPI(); a != "" {
		addrs = append(addrs, a)
	}
	s.cluster.mu.Lock()
	addrs = append(addrs, s.cluster.mark.Join...)
	s.cluster.mu.Unlock()
	addrs = append(addrs, s.cfg.Cluster.Join...)
	var lastErr error = errors.New("no leader known yet")
	for _, a := range addrs {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.peerCall(cctx, a, "add", addRequest{Head: self, Join: role == roleJoining}, &struct{}{})
		cancel()
		if err == nil {
			return nil
		}
		if api.StatusOf(err) == 409 {
			return errRemoved
		}
		lastErr = err
	}
	return lastErr
}

// addHead (leader) makes a head a voter when it joins, and records its
// addresses. A head that is not in the configuration and is not joining
// was removed: refused (409).
func (s *Server) addHead(ctx context.Context, h headInfo, join bool) error {
	if !s.store.IsLeader() {
		return raftstore.ErrNotLeader
	}
	ms, err := s.store.Members(ctx)
	if err != nil {
		return err
	}
	var in *raftstore.Member
	for i := range ms {
		if ms[i].ID == h.ID {
			in = &ms[i]
		}
	}
	if in == nil && !join {
		return api.Conflict("head %s is not a member of this cluster (it was removed)", h.ID)
	}
	if in == nil || !in.Voter || in.RaftAddr != h.RaftAddr {
		s.log.Info("adding a voter", "head", h.ID, "raft", h.RaftAddr)
		if err := s.store.AddVoter(ctx, h.ID, h.RaftAddr); err != nil {
			return err
		}
	}
	_, err = s.store.Apply(ctx, raftstore.MsgHeadUpsert, &raftstore.HeadUpsertRequest{Head: raftstore.Head{
		ID: h.ID, APIAddr: h.APIAddr, RaftAddr: h.RaftAddr, Since: now(), LogVersion: h.LogVersion,
	}})
	return err
}

// leaderAPI is the leader's API URL, or "" when unknown.
func (s *Server) leaderAPI() string {
	_, id := s.store.Leader()
	if id == "" {
		return ""
	}
	if h := s.store.State().Head(id); h != nil {
		return h.APIAddr
	}
	return ""
}

// headsLoop (leader) drops heads that left the Raft configuration from the
// heads table (after a removal, or a restored backup), and follows the log
// format every head applies (see raftstore.LogVersion): batch entries are
// on from format 1, submits carry their first wait reason from format 2.
func (s *Server) headsLoop(ctx context.Context) {
	for wait := time.Duration(0); waits.Sleep(ctx, wait); wait = 3 * time.Second {
		ms, err := s.store.Members(ctx)
		if err != nil {
			continue
		}
		heads := s.store.State().Heads()
		if v := clusterLogVersion(ms, heads); int64(v) != s.logVersion.Load() {
			s.log.Info("log format every head applies", "version", v, "this build", raftstore.LogVersion)
			s.logVersion.Store(int64(v))
		}
		if on := s.logVersion.Load() >= 1; on != s.store.Batching() {
			if on {
				s.log.Info("batch entries on: every head applies them")
			} else {
				s.log.Info("batch entries off: a head does not apply them (yet)")
			}
			s.store.SetBatching(on)
		}
		for _, h := range heads {
			if !slices.ContainsFunc(ms, func(m raftstore.Member) bool { return m.ID == h.ID }) {
				if _, err := s.store.Apply(ctx, raftstore.MsgHeadRemove, &raftstore.HeadRemoveRequest{ID: h.ID}); err != nil && ctx.Err() == nil {
					s.log.Warn("forget a removed head", "head", h.ID, "err", err)
				}
			}
		}
	}
}

// ensureSecrets (leader) seals the CA key and the join token into the
// state when they are not there yet; the bootstrapper then deletes its
// on-disk CA key.
func (s *Server) ensureSecrets(ctx context.Context) error {
	c := s.cluster
	if s.store.State().Secrets() == nil {
		tok := ""
		s.joinMu.RLock()
		tok = s.joinToken
		s.joinMu.RUnlock()
		if c.pendingCA == nil || tok == "" {
			return errors.New("the cluster's secrets are not in the state and this head does not hold them")
		}
		keyPEM, err := os.ReadFile(c.tlsPath("ca.key"))
		if err != nil {
			return err
		}
		if _, err := s.store.Apply(ctx, raftstore.MsgSecretsPut, &raftstore.SecretsPutRequest{Secrets: raftstore.Secrets{
			CACertPEM:       string(c.pendingCA.CertPEM),
			SealedCAKey:     c.key.Seal(pki.PurposeCAKey, keyPEM),
			SealedJoinToken: c.key.Seal(pki.PurposeJoinToken, []byte(tok)),
		}}); err != nil {
			return err
		}
	}
	if c.pendingCA != nil {
		if _, ca := c.secretsOf(s.store.State()); ca != nil {
			if err := os.Remove(c.tlsPath("ca.key")); err == nil {
				s.log.Info("the CA key is sealed in the replicated state; removed it from disk")
			}
		}
	}
	return nil
}

// clusterLogVersion is the newest log format every member of the Raft
// configuration applies, by their heads entries, and no newer than this
// build's: 0 when there are no members, or one has no entry yet (joining).
func clusterLogVersion(members []raftstore.Member, heads []*raftstore.Head) int {
	v := raftstore.LogVersion
	for _, m := range members {
		i := slices.IndexFunc(heads, func(h *raftstore.Head) bool { return h.ID == m.ID })
		if i < 0 {
			return 0
		}
		v = min(v, heads[i].LogVersion)
	}
	if len(members) == 0 {
		return 0
	}
	return v
}
