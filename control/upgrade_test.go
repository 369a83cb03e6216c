package control

import "errors"

// The fake refuses upgrades: the real ones are tested end to end
// (testscripts/upgrade*.txtar).
func (f *fakeBackend) Upgrade() (UpgradeResponse, error) {
	f.record("upgrade")
	return UpgradeResponse{}, errors.Join(ErrConflict, errors.New("upgrade refused"))
}

func (f *fakeBackend) Version() VersionResponse { return VersionResponse{Version: "test"} }
