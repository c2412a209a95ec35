"""The hostile-input corpus: bad and extreme input for every command and public function (test_hostile.py)."""
