// Package console will own the web console served by the platform's HTTP
// server (the console issue). It is empty until then.
package console
