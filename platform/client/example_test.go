package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/weirstream/weir/platform/client"
)

// A developer deploys a job, takes a savepoint and waits for it; a refusal
// of the server is a *ProblemError with the problem's stable code.
func Example() {
	ctx := context.Background()
	c := client.New(os.Getenv("WEIR_URL"), os.Getenv("WEIR_TOKEN"), nil)

	spec, err := os.ReadFile("job.yaml") // modules: {wc: wordcount@2}
	if err != nil {
		fmt.Println(err)
		return
	}
	job, err := c.Deploy(ctx, spec, "", false)
	var pe *client.ProblemError
	if errors.As(err, &pe) && pe.Code() == "invalid-job-spec" {
		for _, f := range pe.Errors {
			fmt.Printf("%s: %s\n", f.Field, f.Problem)
		}
		return
	} else if err != nil {
		fmt.Println(err)
		return
	}

	// One request id per action: a retry of this call returns the same
	// operation instead of taking a second savepoint.
	op, err := c.Savepoint(ctx, job.ID, client.NewRequestID())
	if err != nil {
		fmt.Println(err)
		return
	}
	op, err = c.WaitOperation(ctx, op.ID)
	if err != nil {
		fmt.Println(err) // an *OperationError says whether it was rolled back
		return
	}
	fmt.Printf("savepoint of %s: %s\n", job.ID, op.Result)
}
