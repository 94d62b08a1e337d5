// Package waits holds the one way amld's packages wait for a while
// without outliving their context.
package waits
