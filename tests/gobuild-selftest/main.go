// Prints the stamp set at link time (gobuild.sh's GOBUILD_LDFLAGS, -X main.stamp=...).
package main

import "fmt"

var stamp = "unstamped"

func main() {
	fmt.Println(stamp)
}
