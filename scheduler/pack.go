package scheduler

import "github.com/amld/amld/api"

// PackResult is the outcome of Pack.
type PackResult struct {
	// NewBins is how many template bins had to be opened.
	NewBins int
	// UsedBins[i] is true when existing bin i received work.
	UsedBins []bool
	// Unfit lists runs that fit no bin at all, not even an empty template
	// (a gang larger than allowed is the caller's to catch). A run that
	// does not fit the template but fits the free bins is placed there.
	Unfit []string
}

// Pack places runs, in the order given, first-fit onto the existing bins
// (free capacities) and then onto new bins shaped like template, opening
// new ones as needed. A run of node_count N takes N distinct bins at once.
// maxNew caps how many new bins may be opened (negative: no cap); runs that
// would need more are left out of the count. It answers "how many more nodes
// would this queue need", which is what the autoscaler asks; GPUs are
// counted, not matched by UUID.
func Pack(bins []api.Resources, template api.Resources, runs []*api.Run, maxNew int) PackResult {
	free := append([]api.Resources(nil), bins...)
	res := PackResult{UsedBins: make([]bool, len(bins))}
	var picked []int
	// skip[req] is how many leading bins cannot fit req: free room only
	// shrinks and new bins are appended, so the prefix stays unfit and a
	// long queue of alike runs packs in O(runs + bins), not O(runs × bins).
	skip := map[api.Resources]int{}
	for _, r := range runs {
		n := max(r.NodeCount, 1)
		req := r.Request
		picked = picked[:0]
		start := skip[req]
		prefix := true
		for i := start; i < len(free) && len(picked) < n; i++ {
			if req.Fits(free[i]) {
				picked = append(picked, i)
				prefix = false
			} else if prefix {
				start = i + 1
			}
		}
		skip[req] = start
		need := n - len(picked)
		if need > 0 && !req.Fits(template) {
			res.Unfit = append(res.Unfit, r.ID)
			continue
		}
		if maxNew >= 0 && len(free)-len(bins)+need > maxNew {
			continue
		}
		for _, i := range picked {
			free[i] = free[i].Sub(req)
			if i < len(bins) {
				res.UsedBins[i] = true
			}
		}
		for range need {
			free = append(free, template.Sub(req))
		}
		res.NewBins = len(free) - len(bins)
	}
	return res
}
