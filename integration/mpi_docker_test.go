package integration

import (
	"testing"
	"time"

	"github.com/amld/amld/api"
)

// mpiImageRun is mpiRun in the base image (Debian 12 with openmpi-bin, the
// same Open MPI the test program is compiled against on this machine).
func mpiImageRun(target, sourceID string, env map[string]string) api.RunSpec {
	s := mpiRun(target, sourceID, env)
	s.Environment.Image = baseImage
	return s
}

// TestMPIAllreduceOnTwoNodesOfTheDockerProvider runs the 2 x 2 allreduce
// in containers on docker-provider nodes: mpirun and the daemons run in
// the run containers, which reach the other nodes' agents over the
// cluster's network.
func TestMPIAllreduceOnTwoNodesOfTheDockerProvider(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createDockerCluster(t, c, "dk-mpi", "cpu-2", 2, 120)
	src := uploadDir(t, c, buildMPIProgram(t))

	ids := submitAll(t, c, mpiImageRun("dk-mpi", src, nil))
	r := waitTerminal(t, c, 3*time.Minute, ids)[ids[0]]
	completedOnce(t, r)
	wantSumOnEveryRank(t, "node 0's log", nodeLog(t, c, r.ID, len(r.Attempts), 0))
}

// TestMPIAllreduceInContainersOnLocalNodes runs the same with the docker
// runtime on local nodes (agents on this machine, run containers on the
// host's network).
func TestMPIAllreduceInContainersOnLocalNodes(t *testing.T) {
	h := startDockerHead(t)
	c := h.client()
	createCluster(t, c, "mpi-img", 2, 120)
	src := uploadDir(t, c, buildMPIProgram(t))

	ids := submitAll(t, c, mpiImageRun("mpi-img", src, nil))
	r := waitTerminal(t, c, 3*time.Minute, ids)[ids[0]]
	completedOnce(t, r)
	wantSumOnEveryRank(t, "node 0's log", nodeLog(t, c, r.ID, len(r.Attempts), 0))
}
