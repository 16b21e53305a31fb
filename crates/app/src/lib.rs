//! partnerloop
