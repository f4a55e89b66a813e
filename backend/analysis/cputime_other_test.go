//go:build !unix

package analysis

// processCPUSeconds is unknown here.
func processCPUSeconds() float64 { return -1 }
