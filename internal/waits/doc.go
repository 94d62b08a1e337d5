// Package waits holds the one way amld's packages wait for a while
// without outliving their context, and how they pick the earlier of two
// deadlines to wake at.
package waits
