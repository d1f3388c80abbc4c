package runtime

import "time"

// runtimeGosched yields briefly while polling a condition with a deadline.
func runtimeGosched() { time.Sleep(time.Millisecond) }
