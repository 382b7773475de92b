package main

import "github.com/pushd/pushd/internal/nodetest"

// The in-process node helpers, shared with the other packages that drive
// a node from outside.
var (
	startNode  = nodetest.Start
	metrics    = nodetest.Metrics
	eventually = nodetest.Eventually
)
