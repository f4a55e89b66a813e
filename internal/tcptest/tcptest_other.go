//go:build !linux

package tcptest

import (
	"errors"
	"net"
)

func refusingAddr() (string, func(), error) {
	return "", nil, errors.New("RefusingAddr needs Linux")
}

func unacknowledged(*net.TCPConn) (int, error) {
	return 0, errors.New("WaitDelivered needs Linux (SIOCOUTQ)")
}
