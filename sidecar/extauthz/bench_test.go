package extauthz_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/contentguard/contentguard/xds/policypb"
)

// BenchmarkReportSameID: one allowed request's Check and its access-log
// Report while n other requests with the same request ID await theirs.
// Clients choose their request IDs (requestId.trustIncoming, on by
// default), so n is theirs to choose: the cost of an op must not grow with
// it. Compare the sub-benchmarks' ns/op side by side in one run.
func BenchmarkReportSameID(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run("pending="+strconv.Itoa(n), func(b *testing.B) {
			s, _, _ := newServer(b)
			for i := 0; i < n; i++ {
				if _, err := s.Check(context.Background(), checkReq("same")); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := s.Check(context.Background(), checkReq("same"))
				if err != nil {
					b.Fatal(err)
				}
				ticket := resp.GetDynamicMetadata().GetFields()[policypb.MetadataTicket].GetStringValue()
				s.Report(entry("same", ticket, 200))
			}
			b.StopTimer()
			if got := s.Pending(); got != n {
				b.Fatalf("%d pending, want %d", got, n)
			}
		})
	}
}
