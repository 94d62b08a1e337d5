package scheduler

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/amld/amld/api"
	"pgregory.net/rapid"
)

func packRuns(specs ...[2]int) []*api.Run {
	var runs []*api.Run
	for i, s := range specs {
		runs = append(runs, queued(fmt.Sprintf("r%d", i), cc, 0, uint64(i), res(s[0], 1024, 0), s[1]))
	}
	return runs
}

func TestPack(t *testing.T) {
	cpu4 := sizes["cpu-4"].Resources()
	for _, tc := range []struct {
		name   string
		bins   []api.Resources
		runs   []*api.Run
		maxNew int
		want   PackResult
	}{
		{"nothing queued", []api.Resources{cpu4}, nil, -1,
			PackResult{UsedBins: []bool{false}}},
		{"fits the free bins", []api.Resources{res(1, 8192, 0), res(2, 8192, 0)}, packRuns([2]int{2, 1}, [2]int{1, 1}), -1,
			PackResult{UsedBins: []bool{true, true}}},
		{"opens template bins", nil, packRuns([2]int{3, 1}, [2]int{3, 1}, [2]int{1, 1}), -1,
			PackResult{NewBins: 2, UsedBins: []bool{}}},
		{"a gang takes distinct bins", []api.Resources{cpu4}, packRuns([2]int{1, 2}), -1,
			PackResult{NewBins: 1, UsedBins: []bool{true}}},
		{"a gang takes distinct new bins", nil, packRuns([2]int{1, 3}), -1,
			PackResult{NewBins: 3, UsedBins: []bool{}}},
		{"max new bins leaves out what needs more", nil, packRuns([2]int{1, 3}, [2]int{4, 1}, [2]int{1, 1}), 1,
			PackResult{NewBins: 1, UsedBins: []bool{}}},
		{"too big for the template", nil, packRuns([2]int{5, 1}, [2]int{1, 1}), -1,
			PackResult{NewBins: 1, UsedBins: []bool{}, Unfit: []string{"r0"}}},
		{"too big for the template but fits a free bin", []api.Resources{res(8, 8192, 0)}, packRuns([2]int{6, 1}), -1,
			PackResult{UsedBins: []bool{true}}},
		{"no bins may open", []api.Resources{res(1, 8192, 0)}, packRuns([2]int{2, 1}, [2]int{1, 1}), 0,
			PackResult{UsedBins: []bool{true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bins := slices.Clone(tc.bins)
			got := Pack(tc.bins, cpu4, tc.runs, tc.maxNew)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Pack = %+v, want %+v", got, tc.want)
			}
			if !reflect.DeepEqual(bins, tc.bins) {
				t.Errorf("Pack changed its bins")
			}
		})
	}
}

func TestPackProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		drawRes := func(label string) api.Resources {
			return res(rapid.IntRange(0, 8).Draw(t, label+" cpus"), int64(rapid.IntRange(0, 8).Draw(t, label+" mem"))*1024,
				rapid.IntRange(0, 2).Draw(t, label+" gpus"))
		}
		var bins []api.Resources
		for range rapid.IntRange(0, 5).Draw(t, "bins") {
			bins = append(bins, drawRes("bin"))
		}
		template := drawRes("template")
		var runs []*api.Run
		for i := range rapid.IntRange(0, 10).Draw(t, "runs") {
			runs = append(runs, queued(fmt.Sprintf("r%d", i), cc, 0, uint64(i), drawRes("req"), rapid.IntRange(0, 3).Draw(t, "nodes")))
		}
		maxNew := rapid.IntRange(-1, 6).Draw(t, "maxNew")
		got := Pack(bins, template, runs, maxNew)
		if len(got.UsedBins) != len(bins) || got.NewBins < 0 || (maxNew >= 0 && got.NewBins > maxNew) {
			t.Fatalf("Pack = %+v for %d bins, maxNew %d", got, len(bins), maxNew)
		}
		demand, supply := api.Resources{}, api.Resources{}
		for _, b := range bins {
			supply = supply.Add(b)
		}
		for range got.NewBins {
			supply = supply.Add(template)
		}
		for _, r := range runs {
			if slices.Contains(got.Unfit, r.ID) {
				if r.Request.Fits(template) {
					t.Fatalf("%s reported unfit but fits the template", r.ID)
				}
				continue
			}
			for range max(r.NodeCount, 1) {
				demand = demand.Add(r.Request)
			}
		}
		if maxNew < 0 && !demand.Fits(supply) {
			t.Fatalf("placed demand %v exceeds bins plus new bins %v", demand, supply)
		}
		if maxNew < 0 {
			nodes := 0
			for _, r := range runs {
				nodes += max(r.NodeCount, 1)
			}
			if got.NewBins > nodes {
				t.Fatalf("opened %d bins for %d nodes of demand", got.NewBins, nodes)
			}
		}
	})
}
