"""OMS test-bed AWS emulator: moto 5.2.5 server plus an extension that makes
CloudFormation asynchronous and realistic for the elasticache-redis template."""
