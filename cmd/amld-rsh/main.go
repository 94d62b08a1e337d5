// Command amld-rsh is the rsh client mpirun runs on node 0 of an amld MPI
// run (its plm_rsh_agent): `amld-rsh [ssh options] NODE WORDS...` behaves
// like `ssh NODE WORDS...` against the other nodes' agents. Build it with
// CGO_ENABLED=0: it may run inside any image.
package main

import (
	"os"

	"github.com/amld/amld/mpi"
)

func main() {
	os.Exit(mpi.RshMain(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
