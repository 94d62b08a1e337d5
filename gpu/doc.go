// Package gpu owns what amld knows about a node's NVIDIA GPUs: the
// inventory (which devices a machine has, found through NVML with
// github.com/NVIDIA/go-nvml), and how the devices an attempt holds are handed
// to its command (environment variables for the process runtime, device
// requests for the docker runtime).
//
// The model: a machine has zero or more devices, each named by its UUID
// ("GPU-8d1c..."), which is stable across reboots and driver reloads and the
// same whatever the enumeration order; indices are kept for people. The
// scheduler hands out devices by UUID, and this package turns a list of UUIDs
// into what a runtime needs.
//
// go-nvml needs cgo. The NVML inventory is split with build tags: a cgo build
// loads libnvidia-ml.so.1 at run time (dlopen), so the same binary runs on
// machines without a driver and reports no GPUs there (ErrNoLibrary); a
// CGO_ENABLED=0 build cannot call NVML at all and always reports none
// (ErrNoCgo), so static builds stay possible.
//
// Fakes: Fake is an in-memory inventory for unit tests; NewMock is an
// N-device machine for tests of whole binaries on machines without a GPU
// (in a cgo build it is go-nvml's own mock server behind the real NVML
// inventory code).
package gpu
