package apiserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
)

// An unauthenticated request gets 401, always: the connection's read
// deadline, set so that its body is not waited for, used to be set before
// the answer was written, and the read it failed ended the request's
// context, which the request timeout then answered with 504 when it won
// the race.
func TestUnauthenticatedIsAlways401(t *testing.T) {
	// More threads than this machine's two cores widen the race.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	s, err := New(Config{Authenticator: Authenticators{}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	var (
		mu    sync.Mutex
		codes = map[int]int{}
		wg    sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				resp, err := http.Get(hs.URL + "/api/v1/namespaces")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(codes) != 1 || codes[http.StatusUnauthorized] != 2000 {
		t.Errorf("answers %v, want 2000 × 401", codes)
	}
}
