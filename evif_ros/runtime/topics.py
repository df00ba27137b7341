"""Topic names, frame ids and message types of DESIGN.md, defined once."""

EVENTS = "/davis/events"
TRIGGERS = "/davis/triggers"
APS = "/davis/image_raw"
IMU = "/davis/imu"
DAVIS_INFO = "/davis/camera_info"  # the event sensor's size (width, height); latched
IR_IMAGE = "/ir/image_raw"
IR_INFO = "/ir/camera_info"
FUSED = "/evif/fused"
IR_DEBLURRED = "/evif/ir_deblurred"
VISIBLE = "/evif/visible"
EVENTS_IMAGE = "/evif/events_image"
DIAGNOSTICS = "/diagnostics"
CLOCK = "/clock"
GT_VISIBLE = "/gt/visible"
GT_IR = "/gt/ir"

DAVIS_FRAME = "davis"
IR_FRAME = "ir"

TYPES = {
    EVENTS: "sensor_msgs/msg/PointCloud2",
    TRIGGERS: "sensor_msgs/msg/TimeReference",
    APS: "sensor_msgs/msg/Image",
    IMU: "sensor_msgs/msg/Imu",
    DAVIS_INFO: "sensor_msgs/msg/CameraInfo",
    IR_IMAGE: "sensor_msgs/msg/Image",
    IR_INFO: "sensor_msgs/msg/CameraInfo",
    GT_VISIBLE: "sensor_msgs/msg/Image",
    GT_IR: "sensor_msgs/msg/Image",
    FUSED: "sensor_msgs/msg/Image",
    IR_DEBLURRED: "sensor_msgs/msg/Image",
    VISIBLE: "sensor_msgs/msg/Image",
    EVENTS_IMAGE: "sensor_msgs/msg/Image",
}

TRIGGER_SOURCE = "EXTERNAL_SIGNAL_RISING_EDGE"
