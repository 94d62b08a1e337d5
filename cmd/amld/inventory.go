package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/amld/amld/api"
	"github.com/amld/amld/gpu"
)

// gpuInventory is the inventory `amld agent` asks: NVML (the library at
// nvmlLibrary, "" for the default), or, with --fake-gpus N (tests on
// machines without a GPU), an N-GPU mock machine.
func gpuInventory(nvmlLibrary string, fakeGPUs int) gpu.Inventory {
	if fakeGPUs > 0 {
		return gpu.NewMock(fakeGPUs)
	}
	return gpu.NewNVML(nvmlLibrary)
}

// inventory is what a machine offers as the agent sees it.
type inventory struct {
	Hostname string
	Capacity api.Resources
	GPUs     []api.GPU
	GPUError string
}

// print writes inv for people: `amld agent --print-inventory`.
func (inv inventory) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "host\t%s\n", inv.Hostname)
	fmt.Fprintf(tw, "cpus\t%d\n", inv.Capacity.CPUs)
	fmt.Fprintf(tw, "memory\t%d MiB\n", inv.Capacity.MemoryMB)
	build := "cgo build: NVML is loaded at run time"
	if !gpu.CgoEnabled {
		build = "built without cgo: no GPU discovery"
	}
	fmt.Fprintf(tw, "gpu discovery\t%s\n", build)
	gpus := fmt.Sprint(len(inv.GPUs))
	if len(inv.GPUs) > 0 {
		if g := inv.GPUs[0]; g.Driver != "" {
			gpus += fmt.Sprintf(" (driver %s, CUDA %s)", g.Driver, orDash(g.CUDAVersion))
		}
	}
	if inv.Capacity.GPUs > 0 && inv.Capacity.GPUs < len(inv.GPUs) {
		gpus += fmt.Sprintf(", %d offered (--gpus)", inv.Capacity.GPUs)
	}
	fmt.Fprintf(tw, "gpus\t%s\n", gpus)
	if inv.GPUError != "" {
		fmt.Fprintf(tw, "gpu note\t%s\n", inv.GPUError)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(inv.GPUs) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tUUID\tMODEL\tMEMORY")
	for _, g := range inv.GPUs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d MiB\n", g.Index, g.UUID, orDash(g.Model), g.MemoryMB)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// hostname is os.Hostname, or "-" when it fails.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "-"
	}
	return h
}
