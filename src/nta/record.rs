//! NTA 7516 TXT record parser (being written).
