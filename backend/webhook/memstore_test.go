package webhook_test

import (
	"testing"

	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/backend/webhook/storetest"
)

func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) webhook.Store {
		return webhook.NewMemoryStore(webhook.MemoryStoreOptions{MaxDeadLetters: storetest.MaxDeadLetters, MaxDeadLettersTotal: storetest.MaxDeadLettersTotal})
	})
}
