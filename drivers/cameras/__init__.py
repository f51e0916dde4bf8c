"""Camera health over ONVIF and RTSP (no images, ever): drivers/cameras/README.md."""
